"""KServe v2 framing: the request's JSON header and binary tail (Triton's binary tensor extension),
checked against the served model's signature; the answer renamed as the client called it, with
binary tensor bytes passed on untouched."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.errors import DomainError, InvalidRequest, RequestTooLarge
from chalicelib.domain.signature import ModelSummary, TensorSpec, kserve_shape, shape_problem
from chalicelib.inference.kserve import (
    JSON,
    MAX_BODY_BYTES,
    OCTET_STREAM,
    SAGEMAKER_BINARY,
    InferBody,
    check_request,
    datatype_of,
    metadata_tensors,
    parse_request,
    served_response,
)
from tests.unit.http_answers import http_status

# A batching model: IMAGE is [-1 (batch), 3, -1, 4] to a client, TOKENS a variable-length string.
MODEL = ModelSummary(
    name="fraud_1.tar.gz",
    platform="ensemble",
    served=True,
    max_batch_size=8,
    inputs=[
        TensorSpec(name="IMAGE", data_type="TYPE_FP32", dims=[3, -1, 4]),
        TensorSpec(name="TOKENS", data_type="TYPE_STRING", dims=[1]),
    ],
    outputs=[TensorSpec(name="SCORE", data_type="TYPE_FP32", dims=[1])],
)
# A model without a batch dimension: the client's shape is the config's dims.
UNBATCHED = ModelSummary(
    name="plain_1.tar.gz",
    platform="onnxruntime_onnx",
    served=True,
    max_batch_size=0,
    inputs=[TensorSpec(name="X", data_type="TYPE_INT64", dims=[2, 2])],
    outputs=[TensorSpec(name="Y", data_type="TYPE_INT64", dims=[2])],
)


def image(shape: list[int], **fields: Any) -> dict[str, Any]:
    return {"name": "IMAGE", "datatype": "FP32", "shape": shape, **fields}


def json_request(*inputs: dict[str, Any], **fields: Any) -> bytes:
    return json.dumps({"inputs": list(inputs), **fields}).encode()


def binary_request(inputs: list[dict[str, Any]], tail: bytes, **fields: Any) -> tuple[bytes, str]:
    """A Triton binary request: the JSON header, then the tensors' bytes; and its header length."""
    header = json.dumps({"inputs": inputs, **fields}).encode()
    return header + tail, str(len(header))


def refused(body: bytes, header_length: str | None = None, model: ModelSummary | None = MODEL) -> DomainError:
    """The error parse_request + check_request raise for the body."""
    with pytest.raises(DomainError) as raised:
        check_request(parse_request(body, header_length), model)
    return raised.value


# -- parse_request -------------------------------------------------------------------------------
def test_a_json_request_is_all_header() -> None:
    # GIVEN a JSON body with no Inference-Header-Content-Length
    body = json_request(image([1, 3, 2, 4], data=[0.0] * 24))
    # WHEN it is parsed
    parsed = parse_request(body, None)
    # THEN it is all header, forwarded as application/json
    assert parsed == InferBody(json.loads(body), None, 0)
    assert parsed.content_type == JSON


def test_a_binary_request_splits_at_the_header_length() -> None:
    # GIVEN a JSON header followed by 96 bytes of tensor data
    body, length = binary_request([image([1, 3, 2, 4], parameters={"binary_data_size": 96})], bytes(range(96)))
    # WHEN it is parsed with its header length
    parsed = parse_request(body, length)
    # THEN the header is parsed alone, the tail counted, and SageMaker's binary content type named
    assert parsed.header["inputs"][0]["name"] == "IMAGE"
    assert (parsed.header_length, parsed.binary_length) == (int(length), 96)
    assert parsed.content_type == f"{SAGEMAKER_BINARY};json-header-size={length}"


def test_a_header_length_equal_to_the_body_is_all_json() -> None:
    body = json_request(image([1, 3, 1, 4], data=[0.0] * 12))
    parsed = parse_request(body, str(len(body)))
    assert (parsed.header_length, parsed.binary_length, parsed.content_type) == (None, 0, JSON)


@pytest.mark.parametrize("header_length", ["twelve", "", "1.5", "0", "-3", "100000"])
def test_a_header_length_that_is_not_a_length_within_the_body_is_refused(header_length: str) -> None:
    # GIVEN a valid body (under 100000 bytes) / WHEN its header length is junk, 0, negative or too long
    body = json_request(image([1, 3, 1, 4], data=[0.0] * 12))
    with pytest.raises(InvalidRequest) as raised:
        parse_request(body, header_length)
    # THEN 400 names the header
    assert http_status(raised.value) == 400
    assert "Inference-Header-Content-Length" in raised.value.message


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"", "no body"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\xfa", "not valid JSON"),
        (b"[1, 2, 3]", "JSON object"),
        (b'"inputs"', "JSON object"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused(body: bytes, words: str) -> None:
    with pytest.raises(InvalidRequest, match=words):
        parse_request(body, None)


def test_a_deeply_nested_header_is_a_bad_request() -> None:
    # GIVEN 100 kB of '[' (well under 6 MiB) / WHEN parsed / THEN the client's error: 400
    with pytest.raises(InvalidRequest):
        parse_request(b"[" * 100_000, None)


def test_a_binary_header_that_is_not_json_is_refused() -> None:
    # GIVEN a header length that cuts the JSON short
    body = json_request(image([1, 3, 1, 4], data=[0.0] * 12))
    with pytest.raises(InvalidRequest, match="not valid JSON"):
        parse_request(body, "10")


def test_an_oversized_body_is_refused_before_any_parsing() -> None:
    # GIVEN a body one byte over SageMaker's 6 MiB, which is neither JSON nor correctly framed
    body = b"\xff" * (MAX_BODY_BYTES + 1)
    # WHEN it is parsed with a junk header length / THEN the size is what is refused: 413
    with pytest.raises(RequestTooLarge) as raised:
        parse_request(body, "not-a-number")
    assert http_status(raised.value) == 413
    assert str(MAX_BODY_BYTES + 1) in raised.value.message
    assert MAX_BODY_BYTES == 6 * 1024 * 1024


def test_a_body_of_exactly_six_mib_is_parsed() -> None:
    header = json_request(image([1, 3, 1, 4], parameters={"binary_data_size": MAX_BODY_BYTES}))
    tail = bytes(MAX_BODY_BYTES - len(header))
    parsed = parse_request(header + tail, str(len(header)))
    assert parsed.binary_length == len(tail)


# -- check_request: framing ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "header",
    [
        {},
        {"inputs": []},
        {"inputs": {"IMAGE": [1]}},
        {"inputs": ["IMAGE"]},
        {"inputs": [{"datatype": "FP32", "shape": [1], "data": [1]}]},
        {"inputs": [{"name": "IMAGE", "shape": [1], "data": [1]}]},
        {"inputs": [{"name": "IMAGE", "datatype": "FP32", "data": [1]}]},
        {"inputs": [{"name": "IMAGE", "datatype": "FP32", "shape": [-1], "data": [1]}]},
        {"inputs": [{"name": "IMAGE", "datatype": "FP32", "shape": ["1"], "data": [1]}]},
    ],
)
def test_malformed_inputs_are_refused_without_a_model(header: dict[str, Any]) -> None:
    # GIVEN no recorded signature (model=None): only the framing is checked
    error = refused(json.dumps(header).encode(), model=None)
    assert isinstance(error, InvalidRequest)


def test_without_a_model_any_well_framed_input_passes() -> None:
    # GIVEN a request for tensors the checker knows nothing about / WHEN checked without a model
    body, length = binary_request(
        [
            {"name": "anything", "datatype": "INT16", "shape": [5], "parameters": {"binary_data_size": 10}},
            {"name": "else", "datatype": "NOT_A_TYPE", "shape": [], "data": [1]},
        ],
        bytes(10),
        outputs=[{"name": "whatever"}],
    )
    # THEN nothing is refused
    check_request(parse_request(body, length), None)


def test_an_input_with_neither_data_nor_binary_size_is_refused() -> None:
    error = refused(json_request(image([1, 3, 1, 4])))
    assert isinstance(error, InvalidRequest)
    assert "'IMAGE' has neither 'data' nor a binary_data_size" in error.message


@pytest.mark.parametrize("size", [-1, "48", 47.0, None])
def test_a_binary_size_that_is_not_a_byte_count_is_refused(size: Any) -> None:
    body, length = binary_request([image([1, 3, 1, 4], parameters={"binary_data_size": size})], bytes(48))
    error = refused(body, length)
    assert isinstance(error, InvalidRequest)


def test_a_binary_size_that_does_not_match_the_shape_is_refused() -> None:
    # GIVEN FP32 [1, 3, 1, 4] (48 bytes) that says it is 44 bytes, and 44 bytes follow
    body, length = binary_request([image([1, 3, 1, 4], parameters={"binary_data_size": 44})], bytes(44))
    # THEN 400 names the input, the shape's size and the declared size
    error = refused(body, length)
    assert isinstance(error, InvalidRequest)
    assert "'IMAGE'" in error.message and "48 bytes" in error.message and "44" in error.message


def test_binary_sizes_that_do_not_add_up_to_the_tail_are_refused() -> None:
    # GIVEN one 48-byte input, but 50 bytes after the header
    body, length = binary_request([image([1, 3, 1, 4], parameters={"binary_data_size": 48})], bytes(50))
    error = refused(body, length)
    assert isinstance(error, InvalidRequest)
    assert "add up to 48 bytes" in error.message and "50 bytes follow" in error.message


def test_binary_sizes_in_an_all_json_request_are_refused() -> None:
    # GIVEN a binary_data_size but no header length: nothing follows the header
    error = refused(json_request(image([1, 3, 1, 4], parameters={"binary_data_size": 48})))
    assert isinstance(error, InvalidRequest)
    assert "0 bytes follow" in error.message


def test_bytes_inputs_skip_the_size_check_but_count_towards_the_tail() -> None:
    # GIVEN two strings (4-byte length prefix + bytes each) and a 48-byte image
    strings = b"".join(len(s).to_bytes(4, "little") + s for s in (b"hello", b"hi"))
    body, length = binary_request(
        [
            image([1, 3, 1, 4], parameters={"binary_data_size": 48}),
            {"name": "TOKENS", "datatype": "BYTES", "shape": [1, 1], "parameters": {"binary_data_size": len(strings)}},
        ],
        bytes(48) + strings,
    )
    # WHEN checked / THEN accepted: BYTES have no fixed item size
    check_request(parse_request(body, length), MODEL)
    # AND a BYTES size that does not match the tail is still refused
    short, short_length = binary_request(
        [{"name": "TOKENS", "datatype": "BYTES", "shape": [1, 1], "parameters": {"binary_data_size": 3}}], strings
    )
    assert isinstance(refused(short, short_length), InvalidRequest)


# -- check_request: against the model's config ---------------------------------------------------
def test_a_well_formed_json_request_is_accepted() -> None:
    body = json_request(
        image([2, 3, 5, 4], data=[0.0] * 120),
        {"name": "TOKENS", "datatype": "BYTES", "shape": [2, 1], "data": ["a", "b"]},
        outputs=[{"name": "SCORE", "parameters": {"binary_data": True}}],
    )
    check_request(parse_request(body, None), MODEL)


def test_an_unknown_input_is_refused_naming_the_models_inputs() -> None:
    error = refused(json_request({"name": "PIXELS", "datatype": "FP32", "shape": [1, 3, 1, 4], "data": [0] * 12}))
    assert isinstance(error, InvalidRequest)
    assert "no input 'PIXELS'" in error.message and "['IMAGE', 'TOKENS']" in error.message


@pytest.mark.parametrize("datatype", ["FP16", "TYPE_FP32", "fp32", "BYTES"])
def test_a_datatype_other_than_the_configs_is_refused(datatype: str) -> None:
    error = refused(json_request(image([1, 3, 1, 4], datatype=datatype, data=[0] * 12)))
    assert isinstance(error, InvalidRequest)
    assert f"'IMAGE' is FP32, not {datatype}" in error.message


def test_a_string_input_is_bytes_to_a_client() -> None:
    error = refused(json_request({"name": "TOKENS", "datatype": "STRING", "shape": [1, 1], "data": ["a"]}))
    assert "'TOKENS' is BYTES, not STRING" in error.message


@pytest.mark.parametrize("shape", [[3, 1, 4], [1, 3, 1, 4, 1], [1, 2, 1, 4], [1, 3, 1, 5], []])
def test_a_shape_of_the_wrong_rank_or_dims_is_refused(shape: list[int]) -> None:
    # GIVEN IMAGE is [-1, 3, -1, 4]: the batch is missing, an extra dim, or a fixed dim differs
    error = refused(json_request(image(shape, data=[0.0] * math.prod(shape))))
    assert isinstance(error, InvalidRequest)
    assert "[-1, 3, -1, 4]" in error.message


@pytest.mark.parametrize("shape", [[1, 3, 1, 4], [1, 3, 100, 4], [8, 3, 0, 4], [0, 3, 7, 4]])
def test_wildcard_dims_take_any_size_up_to_the_max_batch(shape: list[int]) -> None:
    check_request(parse_request(json_request(image(shape, data=[0.0] * math.prod(shape))), None), MODEL)


def test_a_batch_over_max_batch_size_is_refused() -> None:
    error = refused(json_request(image([9, 3, 1, 4], data=[0.0] * 108)))
    assert isinstance(error, InvalidRequest)
    assert "batch 9" in error.message and "max_batch_size 8" in error.message


def test_the_api_and_the_warm_up_judge_a_shape_by_one_rule() -> None:
    # GIVEN one checker (chalicelib.domain.signature.shape_problem) / THEN the API's refusal is its message
    spec = MODEL.inputs[0]
    for shape in ([9, 3, 1, 4], [3, 1, 4], [1, 3, 1, 5]):
        error = refused(json_request(image(shape, data=[0.0] * math.prod(shape))))
        assert error.message == f"input 'IMAGE': {shape_problem(shape, spec, MODEL, max_batch=8)}"
    assert shape_problem([0, 3, 1, 4], spec, MODEL, max_batch=8) is None  # batch 0: Triton takes it


def test_a_model_without_batching_takes_its_dims_as_they_are() -> None:
    # GIVEN max_batch_size 0: X is [2, 2], no batch dimension is added
    check_request(
        parse_request(json_request({"name": "X", "datatype": "INT64", "shape": [2, 2], "data": [1, 2, 3, 4]}), None),
        UNBATCHED,
    )
    error = refused(
        json_request({"name": "X", "datatype": "INT64", "shape": [1, 2, 2], "data": [1, 2, 3, 4]}), model=UNBATCHED
    )
    assert "[2, 2]" in error.message


def test_a_binary_input_of_an_unbatched_model_is_sized_by_its_dims() -> None:
    body, length = binary_request(
        [{"name": "X", "datatype": "INT64", "shape": [2, 2], "parameters": {"binary_data_size": 32}}], bytes(32)
    )
    check_request(parse_request(body, length), UNBATCHED)


@pytest.mark.parametrize("outputs", [[{"name": "LOGITS"}], [{"name": "SCORE"}, {"name": "LOGITS"}]])
def test_an_unknown_requested_output_is_refused(outputs: list[dict[str, Any]]) -> None:
    error = refused(json_request(image([1, 3, 1, 4], data=[0.0] * 12), outputs=outputs))
    assert isinstance(error, InvalidRequest)
    assert "no output 'LOGITS'" in error.message and "['SCORE']" in error.message


@pytest.mark.parametrize("outputs", [{"name": "SCORE"}, ["SCORE"], [{"binary_data": True}]])
def test_malformed_outputs_are_refused(outputs: Any) -> None:
    assert isinstance(refused(json_request(image([1, 3, 1, 4], data=[0.0] * 12), outputs=outputs)), InvalidRequest)


def test_a_model_whose_inputs_triton_auto_completes_accepts_its_inputs() -> None:
    # GIVEN an ONNX model whose config.pbtxt lists no inputs (Triton auto-completes them, and
    # validation passes it: onnx_rules._inputs returns early), so its summary has none
    auto = ModelSummary(name="auto_1.tar.gz", platform="onnxruntime_onnx", served=True, max_batch_size=4)
    # WHEN a client sends the graph's input / THEN it is not refused here (Triton checks it)
    check_request(parse_request(json_request(image([1, 3, 1, 4], data=[0.0] * 12)), None), auto)


# -- served_response -----------------------------------------------------------------------------
ANSWER = {
    "model_name": "fraud_3.tar.gz",
    "model_version": "1",
    "outputs": [{"name": "SCORE", "datatype": "FP32", "shape": [1, 1], "data": [0.5]}],
}


def test_a_json_answer_is_renamed_as_the_client_called_it() -> None:
    # GIVEN Triton's answer naming the TargetModel and its repository version
    answer = served_response(json.dumps(ANSWER).encode(), "application/json", "fraud", "3")
    # THEN the client sees the model's name and the registry version; the outputs are kept
    assert json.loads(answer.body) == {**ANSWER, "model_name": "fraud", "model_version": "3"}
    assert (answer.header_length, answer.content_type) == (None, JSON)


def test_a_binary_answer_is_renamed_in_its_header_and_keeps_its_tail() -> None:
    # GIVEN a binary answer: a JSON header naming the TargetModel, then 8 bytes of output
    header = json.dumps(
        {
            **ANSWER,
            "outputs": [{"name": "SCORE", "datatype": "FP32", "shape": [2], "parameters": {"binary_data_size": 8}}],
        }
    ).encode()
    tail = b"\x00\x00\x80\x3f\xff\x00\x0a\x0d"
    content_type = f"{SAGEMAKER_BINARY};json-header-size={len(header)}"
    # WHEN it is served
    answer = served_response(header + tail, content_type, "a_much_longer_model_name", "12.3.4")
    # THEN the new header length frames the renamed header, and the tail is byte-identical
    assert answer.header_length is not None and answer.header_length != len(header)
    assert answer.content_type == OCTET_STREAM
    new_header = json.loads(answer.body[: answer.header_length])
    assert (new_header["model_name"], new_header["model_version"]) == ("a_much_longer_model_name", "12.3.4")
    assert new_header["outputs"] == json.loads(header)["outputs"]
    assert answer.body[answer.header_length :] == tail


def test_a_header_size_parameter_is_found_among_others() -> None:
    header = json.dumps(ANSWER).encode()
    content_type = f"{SAGEMAKER_BINARY}; charset=utf-8;JSON-Header-Size={len(header)}"
    answer = served_response(header + b"tail", content_type, "fraud", "3")
    assert answer.header_length is not None
    assert answer.body[answer.header_length :] == b"tail"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"model crashed", "text/plain"),
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"[1, 2]", "application/json"),
        (b'{"model_name": "x"', "application/json"),
    ],
)
def test_an_answer_that_is_not_a_json_object_passes_unchanged(body: bytes, content_type: str) -> None:
    answer = served_response(body, content_type, "fraud", "3")
    assert (answer.body, answer.header_length) == (body, None)


def test_a_binary_answer_whose_header_is_not_json_passes_unchanged() -> None:
    body = b"\xff\xfe garbage header" + bytes(16)
    answer = served_response(body, f"{SAGEMAKER_BINARY};json-header-size=17", "fraud", "3")
    assert (answer.body, answer.header_length) == (body, 17)


# -- metadata helpers ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("config", "kserve"),
    [("TYPE_FP32", "FP32"), ("TYPE_STRING", "BYTES"), ("TYPE_BOOL", "BOOL"), ("TYPE_BF16", "BF16"), ("INT8", "INT8")],
)
def test_config_types_as_the_protocol_names_them(config: str, kserve: str) -> None:
    assert datatype_of(TensorSpec(name="X", data_type=config, dims=[1])) == kserve


def test_metadata_tensors_carry_the_batch_dimension() -> None:
    assert kserve_shape(MODEL.inputs[0], 8) == [-1, 3, -1, 4]
    assert kserve_shape(UNBATCHED.inputs[0], 0) == [2, 2]
    assert metadata_tensors(MODEL.inputs, MODEL.max_batch_size) == [
        {"name": "IMAGE", "datatype": "FP32", "shape": [-1, 3, -1, 4]},
        {"name": "TOKENS", "datatype": "BYTES", "shape": [-1, 1]},
    ]


# -- property ------------------------------------------------------------------------------------
@st.composite
def binary_requests(draw: st.DrawFn) -> tuple[ModelSummary, list[int], bytes]:
    """A model with one FP32 input of random dims (some wildcards), a shape that fits it, and a
    random tail of exactly that shape's size."""
    max_batch = draw(st.integers(0, 4))
    dims = draw(st.lists(st.one_of(st.just(-1), st.integers(1, 4)), min_size=1, max_size=3))
    shape = ([draw(st.integers(1, max_batch))] if max_batch else []) + [
        draw(st.integers(0, 4)) if d == -1 else d for d in dims
    ]
    model = ModelSummary(
        name="prop_1.tar.gz",
        max_batch_size=max_batch,
        served=True,
        inputs=[TensorSpec(name="IN", data_type="TYPE_FP32", dims=dims)],
        outputs=[TensorSpec(name="OUT", data_type="TYPE_FP32", dims=dims)],
    )
    tail = draw(st.binary(min_size=4 * math.prod(shape), max_size=4 * math.prod(shape)))
    return model, shape, tail


@settings(max_examples=200, deadline=None)
@given(binary_requests(), st.binary(max_size=64), st.text(min_size=1, max_size=20), st.from_regex(r"[0-9]{1,3}"))
def test_well_formed_binary_requests_pass_and_answer_tails_are_kept(
    case: tuple[ModelSummary, list[int], bytes], answer_tail: bytes, name: str, version: str
) -> None:
    model, shape, tail = case
    # GIVEN a well-formed binary request for the model
    body, length = binary_request(
        [{"name": "IN", "datatype": "FP32", "shape": shape, "parameters": {"binary_data_size": len(tail)}}],
        tail,
        outputs=[{"name": "OUT", "parameters": {"binary_data": True}}],
    )
    # WHEN it is parsed and checked / THEN it is accepted, with its tail counted
    parsed = parse_request(body, length)
    check_request(parsed, model)
    assert parsed.binary_length == len(tail)
    # AND an answer with any binary tail keeps it byte for byte behind the renamed header
    header = json.dumps({"model_name": "prop_1.tar.gz", "model_version": "1", "outputs": []}).encode()
    served = served_response(header + answer_tail, f"{SAGEMAKER_BINARY};json-header-size={len(header)}", name, version)
    assert served.header_length is not None
    assert served.body[served.header_length :] == answer_tail
    assert json.loads(served.body[: served.header_length])["model_name"] == name
