"""Local MME adapter: serves an ``onnxruntime_onnx`` model through Triton's Python backend with
onnxruntime on CPU. Generated into the staged copy by mmedeploy; the tarball is unchanged."""

import json
import os

import numpy as np
import triton_python_backend_utils as pb_utils  # provided by Triton's Python backend

MODEL_FILE_PARAMETER = "MMEDEPLOY_ADAPTED_MODEL_FILE"


class TritonPythonModel:
    def initialize(self, args):
        import onnxruntime

        config = json.loads(args["model_config"])
        filename = config["parameters"][MODEL_FILE_PARAMETER]["string_value"]
        path = os.path.join(args["model_repository"], args["model_version"], filename)
        if os.path.isdir(path):  # a directory model: model.onnx/model.onnx plus external data
            path = os.path.join(path, "model.onnx")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # the local MME shares a laptop's cores with everything else
        self.session = onnxruntime.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o["name"] for o in config["output"]]
        self.dtypes = {o["name"]: pb_utils.triton_string_to_numpy(o["data_type"]) for o in config["output"]}

    def execute(self, requests):
        responses = []
        for request in requests:
            feeds = {}
            for name in self.inputs:
                tensor = pb_utils.get_input_tensor_by_name(request, name)
                if tensor is not None:
                    feeds[name] = tensor.as_numpy()
            try:
                results = self.session.run(self.outputs, feeds)
            except Exception as exc:  # noqa: BLE001 - onnxruntime's message is what the caller needs
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc))))
                continue
            tensors = [
                pb_utils.Tensor(name, np.asarray(value).astype(self.dtypes[name], copy=False))
                for name, value in zip(self.outputs, results, strict=True)
            ]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses
