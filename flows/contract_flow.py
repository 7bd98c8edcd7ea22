"""The flow class of Placewright's flows: Prefect's, with parameters stored through pydantic.

Prefect stores a flow run's parameters (what the dashboard shows, and what Retry and deployments run
again) through FastAPI's ``jsonable_encoder``, imported on the first flow run of a process: 0.12 s of
a CLI run, before its first task starts. Our flows' parameters are Placewright's pydantic contracts
(:class:`~placewright.request.RunRequest`, :class:`~placewright.campaign.CampaignSpec`) and JSON
values, and for a pydantic model ``jsonable_encoder`` returns ``model_dump(mode="json", by_alias=True)``:
:class:`ContractFlow` calls that directly. A parameter of any other kind goes through Prefect's own
serializer (tests compare both on the flows' real parameters).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import Flow
from pydantic import BaseModel

JSON_SCALARS = (str, int, float, bool, type(None))


def _is_plain(value: Any) -> bool:
    """Whether ``value`` is a pydantic model or JSON (scalars, lists and string-keyed dicts of them)."""
    if isinstance(value, (BaseModel, *JSON_SCALARS)):
        return True
    if isinstance(value, list):
        return all(_is_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _is_plain(item) for key, item in value.items())
    return False


def _encoded(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, list):
        return [_encoded(item) for item in value]
    if isinstance(value, dict):
        return {key: _encoded(item) for key, item in value.items()}
    return value


class ContractFlow(Flow):
    """A Prefect flow whose pydantic and JSON parameters are stored without importing FastAPI."""

    def serialize_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        if all(_is_plain(value) for value in parameters.values()):
            return {key: _encoded(value) for key, value in parameters.items()}
        return super().serialize_parameters(parameters)


def contract_flow(**options: Any) -> Callable[[Callable[..., Any]], ContractFlow]:
    """Like ``@prefect.flow(**options)``, making a :class:`ContractFlow`."""

    def decorate(fn: Callable[..., Any]) -> ContractFlow:
        return ContractFlow(fn=fn, **options)

    return decorate
