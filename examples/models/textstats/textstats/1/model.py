"""Counts characters and whitespace-separated words of each UTF-8 text."""

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            texts = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy().reshape(-1)
            decoded = [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in texts]
            characters = np.array([[len(t)] for t in decoded], dtype=np.int64)
            words = np.array([[len(t.split())] for t in decoded], dtype=np.int64)
            responses.append(
                pb_utils.InferenceResponse(
                    output_tensors=[pb_utils.Tensor("CHARACTERS", characters), pb_utils.Tensor("WORDS", words)]
                )
            )
        return responses
