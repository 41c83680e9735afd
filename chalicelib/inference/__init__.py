"""The inference API: KServe v2 / Triton HTTP requests routed to a model's serving version on a
SageMaker multi-model endpoint, with the model's name and version hidden from the endpoint."""
