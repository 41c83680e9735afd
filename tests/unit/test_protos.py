"""The validator's protobuf classes (chalicelib/domain/validation/schemas) are what their sources say and
what Triton's and ONNX's own packages define, so the validator reads configs and ONNX graphs as
before while the Lambda ships only the protobuf runtime."""

from __future__ import annotations

import onnx
from google.protobuf import descriptor, text_format
from onnx import TensorProto, helper
from tritonclient.grpc import model_config_pb2 as triton_pb

from chalicelib.domain.validation.schemas import model_config_pb2, onnx_interface_pb2
from mmedeploy.deploy import protos


def test_the_generated_classes_are_what_protoc_makes_of_the_committed_sources() -> None:
    assert protos.stale() == [], "run 'make protos' and commit the result"


def test_the_triton_schema_is_tritonclients_so_both_share_one_set_of_classes() -> None:
    assert model_config_pb2.DESCRIPTOR.serialized_pb == triton_pb.DESCRIPTOR.serialized_pb
    # one descriptor pool entry, one class: the local MME's configs and the validator's mix freely
    assert model_config_pb2.ModelConfig is triton_pb.ModelConfig
    config = text_format.Parse('name: "m" backend: "python" max_batch_size: 4', model_config_pb2.ModelConfig())
    config.input.extend([triton_pb.ModelInput(name="IN", data_type=triton_pb.TYPE_FP32, dims=[3])])
    assert triton_pb.ModelConfig.FromString(config.SerializeToString()) == config


def _fields(message: descriptor.Descriptor) -> list[tuple[object, ...]]:
    return sorted(
        (
            field.number,
            field.name,
            field.type,
            field.is_repeated,
            field.containing_oneof.name if field.containing_oneof else None,
            field.message_type.name if field.message_type else None,
        )
        for field in message.fields
    )


def _same_shape(ours: descriptor.Descriptor, theirs: descriptor.Descriptor) -> None:
    assert _fields(ours) == _fields(theirs), ours.full_name
    assert sorted(ours.nested_types_by_name) == sorted(theirs.nested_types_by_name), ours.full_name
    for name, nested in ours.nested_types_by_name.items():
        _same_shape(nested, theirs.nested_types_by_name[name])


def test_the_onnx_subset_is_onnxs_own_definition_of_those_messages() -> None:
    ours = onnx_interface_pb2.DESCRIPTOR.message_types_by_name
    assert sorted(ours) == ["StringStringEntryProto", "TensorShapeProto", "TypeProto", "ValueInfoProto"]
    for name, message in ours.items():
        _same_shape(message, getattr(onnx, name).DESCRIPTOR)


def test_a_graph_input_decodes_alike_with_either_class() -> None:
    tensor = helper.make_tensor_value_info("IMAGE", TensorProto.FLOAT, ["batch", 3, 224, 224])
    tensor.metadata_props.add(key="k", value="v")
    sequence = helper.make_value_info("SEQ", helper.make_sequence_type_proto(helper.make_tensor_type_proto(7, [2])))
    for info in (tensor, sequence):
        ours = onnx_interface_pb2.ValueInfoProto.FromString(info.SerializeToString())
        assert text_format.MessageToString(ours) == text_format.MessageToString(info)
