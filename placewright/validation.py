"""One wording for every validation error: ``"<field path>: <problem>"`` on one line.

The run contract, campaign files and settings are pydantic models; whichever entry point a value
comes in through (the CLI, a flow's parameters, a campaign file, the settings file), a bad value
is refused with the same line, e.g. ``seed: must be >= 0 (got -1)`` or
``scenes[1].prompt: must not be empty``. A campaign file prefixes its file name.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from placewright.errors import InvalidInput

# Longest input shown back in a message.
MAX_SHOWN_CHARS = 60

# Pydantic error types whose message is reworded (the rest keep pydantic's, lower-cased).
_PROBLEMS = {
    "missing": "required",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be text",
    "list_type": "must be a list",
    "greater_than_equal": "must be >= {ge}",
    "greater_than": "must be > {gt}",
    "less_than_equal": "must be <= {le}",
    "less_than": "must be < {lt}",
    "literal_error": "must be one of: {expected}",
    "enum": "must be one of: {expected}",
    "too_long": "too many items ({actual_length}, limit {max_length})",
    "too_short": "needs at least {min_length} item(s)",
    "string_too_short": "must not be empty",
    "string_too_long": "is too long (limit {max_length} characters)",
}
# Problems that do not show the value back: it is either absent, or (a bound) shown the same whatever its
# spelling, so that "-1" typed on the command line and -1 in a YAML file get the same line.
_SILENT = frozenset({"missing", "greater_than_equal", "greater_than", "less_than_equal", "less_than"})


def describe(exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    """``"<field path>: <problem>"`` for the first error of ``exc``, ``" (and N more)"`` if there are others.

    Args:
        exc: the validation error.
        model: the model that was validated, to list the allowed keys after an unknown one.
    """
    errors = exc.errors()
    first = errors[0]
    loc = tuple(first["loc"])
    problem = _problem(first, loc, model)
    if loc:  # errors of a whole model (loc ()) name their own fields
        problem = f"{field_path(loc)}: {problem}"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{problem}{more}"


def validate(model: type[BaseModel], data: Any, *, source: str | None = None, **kwargs: Any) -> Any:
    """``model.model_validate(data, **kwargs)``; a validation error becomes one :class:`InvalidInput` line.

    Args:
        model: the model to build.
        data: its fields (a mapping), or an instance.
        source: prefixed to the message (a campaign file's name), else nothing.
        **kwargs: passed to ``model_validate`` (``context=...``).
    """
    try:
        return model.model_validate(data, **kwargs)
    except ValidationError as exc:
        message = describe(exc, model)
        raise InvalidInput(f"{source}: {message}" if source else message) from None


def field_path(loc: tuple[int | str, ...]) -> str:
    """``("scenes", 1, "prompt")`` as ``"scenes[1].prompt"``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def one_line(text: str) -> str:
    """``text`` with every run of white space (newlines included) made one space."""
    return " ".join(text.split())


def shown(value: object) -> str:
    """``repr(value)``, cut to :data:`MAX_SHOWN_CHARS`."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 3] + "..."


def _problem(error: Any, loc: tuple[int | str, ...], model: type[BaseModel] | None) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "value_error" and "error" in ctx:
        return one_line(str(ctx["error"]))
    if kind == "extra_forbidden":
        owner = _model_at(model, loc[:-1])
        allowed = f"; allowed: {', '.join(owner.model_fields)}" if owner is not None else ""
        return f"unknown key{allowed}"
    if kind in ("model_type", "model_attributes_type", "dataclass_type") and (owner := _model_at(model, loc)):
        return f"must be a mapping of {', '.join(owner.model_fields)} (got {shown(error['input'])})"
    template = _PROBLEMS.get(kind)
    problem = template.format(**ctx) if template else error["msg"][:1].lower() + error["msg"][1:]
    if kind not in _SILENT and not isinstance(error.get("input"), dict | list):
        problem += f" (got {shown(error.get('input'))})"
    return one_line(problem)


def _model_at(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class found at ``loc`` inside ``model`` (list indices skipped), for listing allowed keys."""
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if model is not None else None
        model = _model_in(field.annotation) if field is not None else None
    return model


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            if (found := _model_in(arg)) is not None:
                return found
    return None
