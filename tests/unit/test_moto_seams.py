"""The EventBridge input rules the seam applies (the delivery itself is tested on the stack)."""

from __future__ import annotations

from mmedeploy.local.moto_seams import target_input, transform_input

EVENT = {"detail-type": "ModelApproved", "detail": {"name": "idcheck", "version": "1", "n": 3}, "time": "t"}


def test_input_forms() -> None:
    assert target_input({"Arn": "x"}, EVENT) == EVENT
    assert target_input({"Arn": "x", "Input": '{"fixed": true}'}, EVENT) == {"fixed": True}
    assert target_input({"Arn": "x", "InputPath": "$.detail"}, EVENT) == EVENT["detail"]
    assert target_input({"Arn": "x", "InputPath": "$.detail.name"}, EVENT) == "idcheck"


def test_json_templates_quote_strings_like_eventbridge() -> None:
    paths = {"name": "$.detail.name", "n": "$.detail.n"}
    assert transform_input('{"model": <name>, "count": <n>}', paths, EVENT) == {"model": "idcheck", "count": 3}
    assert transform_input('{"label": "model <name>"}', paths, EVENT) == {"label": "model idcheck"}
    assert transform_input('{"event": <aws.events.event.json>}', {}, EVENT) == {"event": EVENT}


def test_text_templates_stay_text() -> None:
    assert transform_input("model <name> approved", {"name": "$.detail.name"}, EVENT) == "model idcheck approved"
