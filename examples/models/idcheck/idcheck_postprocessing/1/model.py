"""Post-processing: softmax over the logits and the label of the most likely decision."""

import numpy as np
import triton_python_backend_utils as pb_utils

DECISIONS = np.array([b"approved", b"declined", b"resubmission_requested", b"review"], dtype=object)


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            logits = pb_utils.get_input_tensor_by_name(request, "LOGITS").as_numpy().astype(np.float32)
            shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
            probabilities = (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)
            decision = DECISIONS[probabilities.argmax(axis=-1)].reshape(-1, 1)
            responses.append(
                pb_utils.InferenceResponse(
                    output_tensors=[
                        pb_utils.Tensor("PROBABILITIES", probabilities),
                        pb_utils.Tensor("DECISION", decision),
                    ]
                )
            )
        return responses
