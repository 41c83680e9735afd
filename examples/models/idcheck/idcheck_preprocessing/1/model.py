"""Pre-processing: standardise each feature row to zero mean and unit variance."""

import numpy as np
import triton_python_backend_utils as pb_utils

EPSILON = 1e-6


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            raw = pb_utils.get_input_tensor_by_name(request, "RAW_FEATURES").as_numpy().astype(np.float32)
            mean = raw.mean(axis=-1, keepdims=True)
            std = raw.std(axis=-1, keepdims=True)
            features = ((raw - mean) / (std + EPSILON)).astype(np.float32)
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("FEATURES", features)]))
        return responses
