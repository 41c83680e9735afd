"""The rollout policy: its defaults, what each field refuses (and says to change), and the one merge
of its layers: defaults < settings < the model's rollout.json < the rollout's options."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.domain.errors import InvalidRequest, RolloutPolicyInvalid
from chalicelib.domain.rollout.policy import (
    MAX_STEPS,
    MODEL_FILE_LAYER,
    OPTIONS_LAYER,
    SETTINGS_LAYER,
    RolloutOverrides,
    RolloutPolicy,
    describe_problems,
    overrides_from,
    resolve_policy,
)


def test_the_defaults() -> None:
    policy = RolloutPolicy()
    assert policy.steps == (5, 25, 50, 100)
    assert policy.bake_seconds == 600
    assert policy.max_error_rate_margin == 0.01
    assert policy.max_p99_latency_ratio == 1.2
    assert policy.min_requests == 100
    assert policy.evaluation_interval_seconds == 60
    assert policy.canary_weights == (0.05, 0.25, 0.5)  # the last step is the promotion, not a canary
    assert resolve_policy() == policy


def test_the_policy_is_frozen() -> None:
    with pytest.raises(ValidationError):
        RolloutPolicy().bake_seconds = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ({"steps": []}, "is empty"),
        ({"steps": [5, 50, 25, 100]}, "must rise strictly, and 25% follows 50%"),
        ({"steps": [5, 5, 100]}, "must rise strictly"),
        ({"steps": [5, 25, 50]}, "the last step must be 100"),
        ({"steps": [0, 100]}, "steps[0]: input should be greater than 0"),
        ({"steps": [5, 150]}, "steps[1]: input should be less than or equal to 100"),
        ({"steps": [5, True, 100]}, "is a boolean"),
        ({"steps": [*range(1, MAX_STEPS + 1), 100]}, f"at most {MAX_STEPS}"),
        ({"steps": "5,25,100"}, "steps"),
        ({"bake_seconds": 0}, "bake_seconds: input should be greater than 0 (got 0)"),
        ({"bake_seconds": 1.5}, "bake_seconds"),
        ({"bake_seconds": 10**9}, "7 days"),
        ({"max_error_rate_margin": -0.1}, "max_error_rate_margin: input should be greater than or equal to 0"),
        ({"max_error_rate_margin": 5}, "one percentage point"),
        ({"max_p99_latency_ratio": 0}, "max_p99_latency_ratio: input should be greater than 0"),
        ({"min_requests": 0}, "min_requests: input should be greater than or equal to 1"),
        ({"min_requests": True}, "is a boolean"),
        ({"evaluation_interval_seconds": -60}, "evaluation_interval_seconds"),
        ({"bake": 60}, "'bake' is not a field of the rollout policy; the fields are steps, bake_seconds"),
    ],
)
def test_a_bad_value_is_refused_saying_what_to_change(document: dict[str, Any], says: str) -> None:
    with pytest.raises(RolloutPolicyInvalid) as refused:
        overrides_from(document)
    assert says in refused.value.message
    assert isinstance(refused.value, InvalidRequest)  # the API answers it 400
    with pytest.raises(ValidationError):  # the whole policy refuses the same values
        RolloutPolicy.model_validate(document)


def test_each_problem_is_listed_up_to_three() -> None:
    with pytest.raises(ValidationError) as refused:
        RolloutOverrides.model_validate({"bake_seconds": 0, "min_requests": 0, "steps": [], "max_p99_latency_ratio": 0})
    text = describe_problems(refused.value)
    assert text.count(";") >= 2 and text.endswith("(and 1 more)")


def test_what_is_quoted_back_is_clipped() -> None:
    with pytest.raises(RolloutPolicyInvalid) as refused:
        overrides_from({"bake_seconds": "x" * 10_000, "y" * 10_000: 1})
    assert len(refused.value.message) < 600
    assert "'xxxx" in refused.value.message and "yyy...'" in refused.value.message


@pytest.mark.parametrize("document", [{"steps": [float("nan"), 100]}, {"max_p99_latency_ratio": float("inf")}])
def test_json_s_nan_and_infinity_are_refused(document: dict[str, Any]) -> None:
    with pytest.raises(RolloutPolicyInvalid):
        overrides_from(document)


def test_steps_may_be_fractional_percentages() -> None:
    assert RolloutPolicy(steps=(0.5, 2.5, 100)).canary_weights == (0.005, 0.025)


def test_one_step_of_100_is_a_promotion_without_canary() -> None:
    assert RolloutPolicy(steps=(100,)).canary_weights == ()


def test_a_later_layer_wins_field_by_field() -> None:
    settings = RolloutOverrides(bake_seconds=900, min_requests=500, steps=(10, 100))
    model_file = RolloutOverrides(min_requests=50, max_p99_latency_ratio=1.5)
    options = RolloutOverrides(bake_seconds=120)
    policy = resolve_policy(settings=settings, model_file=model_file, options=options)
    assert policy == RolloutPolicy(
        steps=(10, 100),  # settings
        bake_seconds=120,  # the rollout's options over settings
        min_requests=50,  # the model's file over settings
        max_p99_latency_ratio=1.5,  # the model's file
        max_error_rate_margin=0.01,  # default
        evaluation_interval_seconds=60,  # default
    )


def test_a_layer_of_nothing_changes_nothing() -> None:
    assert resolve_policy(RolloutOverrides(), None, overrides_from({"steps": None})) == RolloutPolicy()


def test_values_that_do_not_fit_together_name_their_layers() -> None:
    with pytest.raises(RolloutPolicyInvalid) as refused:
        resolve_policy(
            settings=RolloutOverrides(evaluation_interval_seconds=60),
            model_file=RolloutOverrides(min_requests=10),
            options=RolloutOverrides(bake_seconds=30),
        )
    message = refused.value.message
    assert "evaluation_interval_seconds (60) is longer than bake_seconds (30)" in message
    assert f"evaluation_interval_seconds from {SETTINGS_LAYER}" in message
    assert f"bake_seconds from {OPTIONS_LAYER}" in message
    assert f"min_requests from {MODEL_FILE_LAYER}" in message


def test_a_short_bake_with_the_default_interval_says_what_to_change() -> None:
    with pytest.raises(RolloutPolicyInvalid) as refused:
        resolve_policy(options=RolloutOverrides(bake_seconds=10))
    assert "shorten the interval or lengthen the bake" in refused.value.message
    assert resolve_policy(options=RolloutOverrides(bake_seconds=10, evaluation_interval_seconds=2)).bake_seconds == 10


def test_the_overrides_give_only_what_they_set() -> None:
    assert RolloutOverrides(bake_seconds=60).given() == {"bake_seconds": 60}
    assert overrides_from({"steps": [5, 100], "min_requests": "20"}).given() == {"steps": (5, 100), "min_requests": 20}
