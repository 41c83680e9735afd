"""A rollout's policy: the canary's steps, how long each bakes, and the gates a candidate passes
before its share of traffic rises.

One :class:`RolloutPolicy` is made for each rollout by :func:`resolve_policy`, the one place the
layers meet, each over the one before (a later layer wins, field by field):

1. the built-in defaults (the field defaults below);
2. the deployment's settings (the template's parameters);
3. the model's own ``rollout.json`` at its tarball's root (read by the validator:
   :mod:`chalicelib.domain.rollout.tarball_policy`);
4. the rollout's own options (``mmedeploy rollout NAME VERSION --steps ... --bake ...``).

Layers 2 to 4 are :class:`RolloutOverrides`: the same fields, each optional (absent or ``null``:
the layer below decides), checked field by field as the policy checks them, so a bad value is
refused where it is written. What only the whole policy can tell (an evaluation interval longer
than the bake) is checked after the merge, and the error names the layer each value came from.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from chalicelib.domain.errors import RolloutPolicyInvalid

DEFAULT_STEPS: tuple[float, ...] = (5.0, 25.0, 50.0, 100.0)
MAX_STEPS = 20
# A Step Functions Wait state may wait a year; a step that bakes longer than a week is a mistake.
MAX_BAKE_SECONDS = 7 * 24 * 3600
# Step Functions keeps at most 25,000 events of an execution's history, and each reading of the
# gates takes about 9 (the Task's and the Wait's): a policy planning more readings than this would
# end its execution partway (FAILED, the canary removed). A pause or a wait for traffic spends
# readings too, so the plan keeps a margin.
MAX_PLANNED_READINGS = 2000
_MAX_PROBLEMS_SHOWN = 3


def _not_bool(value: Any) -> Any:
    # JSON's true is not 1: `"min_requests": true` is a mistake, not one request
    if isinstance(value, bool):
        raise ValueError("is a boolean; give a number")
    return value


def _rising_to_100(steps: tuple[float, ...]) -> tuple[float, ...]:
    if not steps:
        raise ValueError("is empty; give the canary weights in percent, ending at 100: e.g. [5, 25, 50, 100]")
    if len(steps) > MAX_STEPS:
        raise ValueError(f"has {len(steps)} steps; at most {MAX_STEPS}")
    for before, after in itertools.pairwise(steps):
        if after <= before:
            raise ValueError(
                f"must rise strictly, and {_pct(after)} follows {_pct(before)}: "
                f"list each weight once, smallest first (e.g. [5, 25, 50, 100])"
            )
    if steps[-1] != 100:
        raise ValueError(
            f"ends at {_pct(steps[-1])}; the last step must be 100 (all the traffic: the candidate "
            f"becomes production), e.g. [{', '.join(f'{s:g}' for s in steps)}, 100]"
        )
    return steps


# One type per field, shared by the policy and its overrides, so both refuse the same values.
Weight = Annotated[float, BeforeValidator(_not_bool), Field(gt=0, le=100)]
Steps = Annotated[tuple[Weight, ...], AfterValidator(_rising_to_100)]
Seconds = Annotated[int, BeforeValidator(_not_bool), Field(gt=0, le=MAX_BAKE_SECONDS)]
Margin = Annotated[float, BeforeValidator(_not_bool), Field(ge=0, le=1)]
Ratio = Annotated[float, BeforeValidator(_not_bool), Field(gt=0, le=100)]
Requests = Annotated[int, BeforeValidator(_not_bool), Field(ge=1, le=1_000_000_000)]
Switch = Annotated[bool, Field(strict=True)]  # true or false, not 1 or "yes"

# What each field takes, said in the error that refuses a value for it.
FIELD_HELP: dict[str, str] = {
    "steps": "a list of canary weights in percent, rising strictly to 100, e.g. [5, 25, 50, 100]",
    "bake_seconds": f"whole seconds each step runs before the next, from 1 to {MAX_BAKE_SECONDS} (7 days), e.g. 600",
    "max_error_rate_margin": (
        "how much higher the candidate's error rate may be than production's, as a fraction "
        "from 0 to 1 (0.01: one percentage point)"
    ),
    "max_p99_latency_ratio": (
        "the candidate's p99 latency at most this many times production's, a number above 0 (1.2: at most 20% slower)"
    ),
    "min_requests": "requests each version must have served in a step before the gates judge it, at least 1",
    "evaluation_interval_seconds": ("whole seconds between two readings of the metrics, from 1 to the bake, e.g. 60"),
    "start_on_approval": (
        "true or false: true makes an approval start a rollout instead of promoting the version at once"
    ),
}


class RolloutOverrides(BaseModel):
    """One layer over the defaults: the policy's fields, each optional (see the module's doc)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: Steps | None = None
    bake_seconds: Seconds | None = None
    max_error_rate_margin: Margin | None = None
    max_p99_latency_ratio: Ratio | None = None
    min_requests: Requests | None = None
    evaluation_interval_seconds: Seconds | None = None
    start_on_approval: Switch | None = None

    def given(self) -> dict[str, Any]:
        """The fields this layer sets."""
        return self.model_dump(exclude_none=True)


class RolloutPolicy(BaseModel):
    """How one rollout proceeds; the defaults are the built-in layer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # the candidate's share of the model's traffic at each step, in percent; 100 is the promotion
    steps: Steps = DEFAULT_STEPS
    bake_seconds: Seconds = 600
    # gate 1: candidate's error rate <= production's + this (a fraction: 0.01 is one point)
    max_error_rate_margin: Margin = 0.01
    # gate 2: candidate's p99 latency <= this x production's
    max_p99_latency_ratio: Ratio = 1.2
    # neither gate judges a step before both versions served this many requests in it
    min_requests: Requests = 100
    evaluation_interval_seconds: Seconds = 60
    # an approval starts a rollout (else PromoteModel promotes at once; an admin's `mmedeploy
    # rollout` starts one either way)
    start_on_approval: Switch = False

    @model_validator(mode="after")
    def _interval_within_bake(self) -> RolloutPolicy:
        if self.evaluation_interval_seconds > self.bake_seconds:
            raise ValueError(
                f"evaluation_interval_seconds ({self.evaluation_interval_seconds}) is longer than bake_seconds "
                f"({self.bake_seconds}): a step would end before its first evaluation; shorten the interval "
                "or lengthen the bake"
            )
        if self.planned_readings > MAX_PLANNED_READINGS:
            raise ValueError(
                f"{len(self.steps) - 1} canary step(s) of {self.bake_seconds} s read every "
                f"{self.evaluation_interval_seconds} s are {self.planned_readings} readings of the gates; a "
                f"rollout's execution holds about {MAX_PLANNED_READINGS} (Step Functions keeps 25,000 events of "
                "one execution): lengthen the interval, shorten the bake or take fewer steps"
            )
        return self

    @property
    def planned_readings(self) -> int:
        """How many times the gates read a rollout that passes every step as soon as it baked."""
        return (len(self.steps) - 1) * -(-self.bake_seconds // self.evaluation_interval_seconds)

    @property
    def canary_weights(self) -> tuple[float, ...]:
        """The canary's weights (fractions of the traffic, as the registry's canary holds them) of
        every step before the last; the last step is the promotion itself."""
        return tuple(step / 100 for step in self.steps[:-1])


# The layers over the defaults, lowest first, as errors name them.
SETTINGS_LAYER = "the deployment's settings"
MODEL_FILE_LAYER = "the model's rollout.json"
OPTIONS_LAYER = "the rollout's options"


def resolve_policy(
    settings: RolloutOverrides | None = None,
    model_file: RolloutOverrides | None = None,
    options: RolloutOverrides | None = None,
) -> RolloutPolicy:
    """The policy of one rollout: built-in defaults < ``settings`` (the template's parameters) <
    ``model_file`` (the tarball's ``rollout.json``) < ``options`` (the CLI's, per rollout).

    Raises :class:`RolloutPolicyInvalid` when the merged fields do not fit together, naming the
    layer each conflicting value came from."""
    merged: dict[str, Any] = {}
    source: dict[str, str] = {}
    for layer_name, layer in ((SETTINGS_LAYER, settings), (MODEL_FILE_LAYER, model_file), (OPTIONS_LAYER, options)):
        if layer is None:
            continue
        for key, value in layer.given().items():
            merged[key] = value
            source[key] = layer_name
    try:
        return RolloutPolicy.model_validate(merged)
    except ValidationError as exc:
        origins = ", ".join(f"{key} from {layer}" for key, layer in source.items()) or "nothing overridden"
        raise RolloutPolicyInvalid(
            f"the rollout policy does not hold together: {describe_problems(exc)} ({origins})"
        ) from None


def overrides_from(document: Mapping[str, Any]) -> RolloutOverrides:
    """One layer from a JSON-like mapping; raises :class:`RolloutPolicyInvalid` saying what to change."""
    try:
        return RolloutOverrides.model_validate(document)
    except ValidationError as exc:
        raise RolloutPolicyInvalid(describe_problems(exc)) from None


def describe_problems(exc: ValidationError) -> str:
    """A policy's validation errors for people: each field, what is wrong, and what it takes."""
    errors = exc.errors()
    shown = [_problem(error) for error in errors[:_MAX_PROBLEMS_SHOWN]]
    more = f" (and {len(errors) - _MAX_PROBLEMS_SHOWN} more)" if len(errors) > _MAX_PROBLEMS_SHOWN else ""
    return "; ".join(shown) + more


def _problem(error: Any) -> str:
    loc: tuple[int | str, ...] = error["loc"]
    message: str = error["msg"].removeprefix("Value error, ")
    if not loc:  # the whole policy (a check across fields): its message says what to change
        return message
    field = _clip(str(loc[0]))
    if error["type"] == "extra_forbidden":
        return f"'{field}' is not a field of the rollout policy; the fields are {', '.join(FIELD_HELP)}"
    where = field + "".join(f"[{part}]" for part in loc[1:])
    got = error.get("input")
    shown = f" (got {_clip(repr(got))})" if not isinstance(got, dict | list | tuple) and got is not None else ""
    # our own checks say what to change; pydantic's say what is wrong, and the field's help the rest
    takes = "" if error["type"] == "value_error" else f"; {field} is {FIELD_HELP.get(field, 'not known')}"
    return f"{where}: {message[:1].lower()}{message[1:]}{shown}{takes}"


def _clip(text: str, most: int = 60) -> str:
    return text if len(text) <= most else text[: most - 3] + "..."


def _pct(weight: float) -> str:
    return f"{weight:g}%"
