"""Local MME adapter: serves a ``pytorch_libtorch`` (TorchScript) model through Triton's Python
backend with torch on CPU. Generated into the staged copy by mmedeploy; the tarball is unchanged.

Inputs are passed to ``forward`` in the config's order and outputs taken in the config's order,
as the libtorch backend does for the ``INPUT__0`` / ``OUTPUT__0`` naming convention."""

import json
import os

import numpy as np
import triton_python_backend_utils as pb_utils  # provided by Triton's Python backend

MODEL_FILE_PARAMETER = "MMEDEPLOY_ADAPTED_MODEL_FILE"


class TritonPythonModel:
    def initialize(self, args):
        try:
            import torch
        except ImportError:
            raise RuntimeError(
                "PyTorch models need torch in the local stack's environment; install the CPU build "
                "with: .venv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu"
            ) from None
        self.torch = torch
        config = json.loads(args["model_config"])
        filename = config["parameters"][MODEL_FILE_PARAMETER]["string_value"]
        path = os.path.join(args["model_repository"], args["model_version"], filename)
        self.module = torch.jit.load(path, map_location="cpu").eval()
        self.inputs = [i["name"] for i in config["input"]]
        self.outputs = [o["name"] for o in config["output"]]
        self.dtypes = {o["name"]: pb_utils.triton_string_to_numpy(o["data_type"]) for o in config["output"]}

    def execute(self, requests):
        responses = []
        for request in requests:
            args = [
                self.torch.from_numpy(pb_utils.get_input_tensor_by_name(request, n).as_numpy()) for n in self.inputs
            ]
            try:
                with self.torch.inference_mode():
                    result = self.module(*args)
            except Exception as exc:  # noqa: BLE001 - torch's message is what the caller needs
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc))))
                continue
            values = result if isinstance(result, (tuple, list)) else [result]
            tensors = [
                pb_utils.Tensor(name, np.asarray(value.numpy()).astype(self.dtypes[name], copy=False))
                for name, value in zip(self.outputs, values, strict=False)
            ]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses
