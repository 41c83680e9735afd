"""What the registry's DynamoDB stores share: a transaction whose failed condition is told apart
from the other ways it can fail, and botocore's errors translated into the domain's."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.domain.errors import RegistryBusy, RegistryError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class ConditionFailed(Exception):
    """A write's condition did not hold: the store re-reads and decides (never leaves the adapter)."""


def transact(db: DynamoDBClient, items: list[dict[str, Any]]) -> None:
    """TransactWriteItems; ConditionFailed when a condition cancelled it, RegistryError for the rest."""
    try:
        db.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
    except db.exceptions.TransactionCanceledException as exc:
        reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]  # type: ignore[attr-defined]
        if "ConditionalCheckFailed" in reasons:
            raise ConditionFailed from exc
        if BUSY_IN_TRANSACTION.intersection(reasons):
            raise RegistryBusy(f"the registry's table cancelled a transaction: {', '.join(map(str, reasons))}") from exc
        raise registry_error(exc) from exc
    except ClientError as exc:
        raise registry_error(exc) from exc


# What DynamoDB answers when it sheds load (the SDK has already retried them, with backoff).
BUSY = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded", "InternalServerError"}
)
BUSY_IN_TRANSACTION = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded"})  # cancellation reasons


def registry_error(exc: ClientError) -> RegistryError:
    error = exc.response.get("Error", {})
    code = error.get("Code", "")
    kind = RegistryBusy if code in BUSY else RegistryError
    return kind(f"the registry's table answered {code}: {error.get('Message', '')}")


def translate_errors[**P, R](method: Callable[P, R]) -> Callable[P, R]:
    """A store's public method, its ClientError raised as a RegistryError."""

    @functools.wraps(method)
    def translating(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except ClientError as exc:
            raise registry_error(exc) from exc

    return translating
