"""The local MME: a stand-in for SageMaker's GPU multi-model endpoint on a real Triton (CPU).

``server`` is the InvokeEndpoint front door, ``endpoint`` one endpoint and its Triton,
``model_cache`` the MME's load/unload rules, ``staging`` the tarball -> Triton models step,
``triton`` the supervised ``tritonserver`` process, ``metrics`` the CloudWatch side.
"""
