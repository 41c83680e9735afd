"""The Triton model-tarball validator: one streaming pass, never extracting.

Public entry point: :func:`chalicelib.domain.validation.validator.validate_tarball`.
"""
