"""Cached stage results are data, not code: how they are written, and the check before one is read.

Prefect persists a task's result as a JSON *result record* whose ``metadata.serializer`` says how to
read the result back, and reads it with whatever serializer the record names. With its default
(pickle), or its ``json`` serializer (which imports any class a record names), anyone who can write
the results folder (a shared bucket) gets code run by every process that gets a cache hit. So:

- :class:`PlacewrightJSONSerializer` (type ``placewright-json``) writes what stage tasks return as
  JSON, each object tagged with its class's name, and reads back only classes in an allowlist of our
  own result types (:data:`RESULT_TYPES`, plus each stage task's declared return type, registered by
  :func:`allow` when the task is defined). Tags are looked up in that allowlist, never imported; an
  unknown tag or a field the class does not have is an error.
- :class:`LocalResults` and :class:`RemoteResults` are result storage blocks whose ``read_path``
  checks a record *before Prefect parses it* (:func:`checked_record`): a record written by any other
  serializer is refused with :class:`~placewright.errors.UnsafeResult`, and nothing in it is loaded.
  They are saved blocks, so a result read back from the API (by block id, in any process that
  imports this module) goes through the same check; a process without it cannot load them at all.
- Prefect treats an unreadable record as a cache miss (its ``exists`` swallows errors), which would
  quietly overwrite a planted record: :func:`refuse_unsafe_cached_result`, run by every stage task
  before its body, fails the task instead, with the one-line message. (A record of ours that does not
  decode, e.g. after a result class changed, holds no code: it is computed again, with a warning.)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import typing
from typing import Any

import numpy as np
from prefect._internal.compatibility.async_dispatch import async_dispatch
from prefect.exceptions import MissingContextError
from prefect.filesystems import LocalFileSystem, RemoteFileSystem
from prefect.logging import get_run_logger
from prefect.results import ResultRecordMetadata
from prefect.serializers import Serializer
from prefect.transactions import get_transaction
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from placewright.analyze import Analysis, AnalyzeResult
from placewright.backends import StageRecord
from placewright.errors import UnsafeResult, first_line
from placewright.locate import LocateResult
from placewright.quality import Check, QualityReport
from placewright.store import ImageRef
from placewright.types import Box, Size, Surface
from tasks.refs import CompositeOutput, CutoutOutput, SceneOutput, StagedImage

SERIALIZER_TYPE = "placewright-json"
# Part of every stage's cache key: records written before results were data (pickles) are never looked up.
RESULT_FORMAT = f"{SERIALIZER_TYPE}/1"
# What stage and check tasks return, and what those hold (stage_task adds any other stage's return type).
RESULT_TYPES: tuple[type, ...] = (
    ImageRef,
    StageRecord,
    StagedImage,
    CutoutOutput,
    SceneOutput,
    CompositeOutput,
    AnalyzeResult,
    Analysis,
    LocateResult,
    Surface,
    Box,
    Size,
    Check,
    QualityReport,
)

_TYPES: dict[str, type] = {}  # tag -> class: the allowlist
_ADAPTERS: dict[type, TypeAdapter[Any]] = {}
TAG = "$"  # every JSON object in a result is {"$": tag, ...}: a tuple, a dict or an allowlisted class


def tag_of(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def allow(*types: Any) -> None:
    """Add result classes to the allowlist: dataclasses and pydantic models in ``types`` (annotations
    such as ``X | None`` or ``list[X]`` are looked into), with the classes their fields hold."""
    for tp in types:
        if isinstance(tp, type) and (dataclasses.is_dataclass(tp) or issubclass(tp, BaseModel)):
            if _TYPES.get(tag_of(tp)) is tp:
                continue
            _TYPES[tag_of(tp)] = tp
            _ADAPTERS.pop(tp, None)
            if issubclass(tp, BaseModel):
                allow(*(info.annotation for info in tp.model_fields.values()))
            else:
                hints = typing.get_type_hints(tp)
                allow(*(hints[f.name] for f in dataclasses.fields(tp) if f.name in hints))
        allow(*typing.get_args(tp))


allow(*RESULT_TYPES)


def _field_names(cls: type) -> set[str]:
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        return set(cls.model_fields)
    return {f.name for f in dataclasses.fields(cls) if f.init}


def encode(value: Any) -> Any:
    """``value`` as JSON-ready data: scalars, lists, tagged tuples/dicts and allowlisted classes.

    Raises:
        TypeError: a value of a class that is not in the allowlist (a result must be data).
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, tuple) and type(value) is tuple:
        return {TAG: "tuple", "items": [encode(v) for v in value]}
    if isinstance(value, dict):
        return {TAG: "dict", "items": [[encode(k), encode(v)] for k, v in value.items()]}
    cls = type(value)
    if _TYPES.get(tag_of(cls)) is cls:
        names = list(cls.model_fields) if isinstance(value, BaseModel) else [f.name for f in dataclasses.fields(value)]
        return {TAG: tag_of(cls), "fields": {name: encode(getattr(value, name)) for name in names}}
    raise TypeError(f"a {tag_of(cls)} is not a placewright result type (see tasks.results.RESULT_TYPES)")


def decode(data: Any) -> Any:
    """The value :func:`encode` made ``data`` from; only allowlisted classes are built.

    Raises:
        UnsafeResult: an unknown tag, a malformed object or fields its class does not accept.
    """
    if data is None or isinstance(data, bool | int | float | str):
        return data
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict) or not isinstance(data.get(TAG), str):
        raise UnsafeResult(f"not placewright result data: an untagged {type(data).__name__}")
    tag = data[TAG]
    if tag in ("tuple", "dict"):
        items = _payload(data, "items", list)
        if tag == "tuple":
            return tuple(decode(v) for v in items)
        if not all(
            isinstance(pair, list) and len(pair) == 2 and not isinstance(pair[0], list | dict) for pair in items
        ):
            raise UnsafeResult("not placewright result data: a dict's items are not [scalar key, value] pairs")
        return {decode(k): decode(v) for k, v in items}
    cls = _TYPES.get(tag)
    if cls is None:
        raise UnsafeResult(f"not placewright result data: unknown type tag {tag!r} (not an allowed result type)")
    fields = _payload(data, "fields", dict)
    unknown = sorted(set(fields) - _field_names(cls))
    if unknown:
        raise UnsafeResult(f"not placewright result data: {tag} has no field {unknown[0]!r}")
    values = {name: decode(v) for name, v in fields.items()}
    try:
        if issubclass(cls, BaseModel):
            return cls.model_validate(values)
        if cls not in _ADAPTERS:
            _ADAPTERS[cls] = TypeAdapter(cls)
        return _ADAPTERS[cls].validate_python(values)
    except (ValidationError, TypeError, ValueError) as exc:
        raise UnsafeResult(f"not placewright result data: a bad {tag}: {first_line(exc)}") from exc


def _payload(data: dict[str, Any], key: str, kind: type) -> Any:
    if set(data) != {TAG, key} or not isinstance(data[key], kind):
        raise UnsafeResult(f"not placewright result data: a {data[TAG]!r} object must be {{{TAG!r}, {key!r}}}")
    return data[key]


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json`` object hook: a key given twice is refused (two parsers could each keep another one)."""
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("a key appears twice in one object")
    return result


class PlacewrightJSONSerializer(Serializer):
    """Prefect serializer of stage results: JSON data, read back only into allowlisted classes."""

    type: str = Field(default=SERIALIZER_TYPE, frozen=True)

    def dumps(self, obj: Any) -> bytes:
        return json.dumps(encode(obj), separators=(",", ":")).encode()

    def loads(self, blob: bytes) -> Any:
        try:
            data = json.loads(blob, object_pairs_hook=_unique_keys)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise UnsafeResult(f"not placewright result data: {first_line(exc)}") from exc
        return decode(data)


SERIALIZER = PlacewrightJSONSerializer()


def refusal(key: str, storage: str, found: str) -> UnsafeResult:
    return UnsafeResult(
        f"refusing cached result {key} in {storage}: {found}; only {SERIALIZER_TYPE} results are read "
        "(a results store must hold data, not code)"
    )


def checked_record(content: bytes, key: str, storage: str) -> bytes:
    """A result record read from ``storage``, as bytes Prefect may parse, once it is known to be ours.

    Only the record's JSON is parsed here, never its payload. The bytes returned are the record as
    checked (re-encoded), so Prefect parses exactly what was checked.

    Raises:
        UnsafeResult: a record written by another serializer, or not a result record at all.
    """
    try:
        record = json.loads(content, object_pairs_hook=_unique_keys)
    except ValueError:
        raise refusal(key, storage, "not a JSON result record") from None
    if not isinstance(record, dict):
        raise refusal(key, storage, "not a JSON result record")
    metadata = record.get("metadata")
    # Prefect moves a top-level "serializer" (an old record format) over the metadata's.
    serializer = record.get("serializer", metadata.get("serializer") if isinstance(metadata, dict) else None)
    found = serializer.get("type") if isinstance(serializer, dict) else serializer
    if found != SERIALIZER_TYPE:
        if isinstance(found, str):
            raise refusal(key, storage, f"written by the {found!r} serializer")
        raise refusal(key, storage, "a record that names no serializer (Prefect reads those as pickles)")
    if set(record) != {"metadata", "result"} or serializer != {"type": SERIALIZER_TYPE}:
        raise refusal(key, storage, f"a {SERIALIZER_TYPE} record of an unexpected shape")
    if not isinstance(record["result"], str):
        raise refusal(key, storage, f"a {SERIALIZER_TYPE} record whose result is not serialized data")
    try:
        ResultRecordMetadata.model_validate(metadata)
    except ValidationError as exc:
        raise refusal(key, storage, f"a {SERIALIZER_TYPE} record with bad metadata ({first_line(exc)})") from None
    return json.dumps(record).encode()


class _ChecksRecords:
    """What both result storage blocks add: the check of every record they read."""

    def _checked(self, key: str, content: bytes) -> bytes:
        return checked_record(content, key, str(getattr(self, "basepath", None)))

    def check_stored(self, key: str) -> bytes | None:
        """The record stored under ``key`` (None: there is none).

        Raises:
            UnsafeResult: the record there is not ours.
        """
        try:
            return self.read_path(key, _sync=True)  # type: ignore[attr-defined]
        except UnsafeResult:
            raise
        except (OSError, ValueError):  # nothing there (LocalFileSystem says so with a ValueError)
            return None


class LocalResults(_ChecksRecords, LocalFileSystem):
    """Stage results in a local folder; a record not written by ``placewright-json`` is refused on read."""

    _block_type_name = "Placewright Local Results"

    async def aread_path(self, path: str) -> bytes:
        return self._checked(path, await super().aread_path(path))

    @async_dispatch(aread_path)
    def read_path(self, path: str) -> bytes:
        return self._checked(path, super().read_path(path, _sync=True))


class RemoteResults(_ChecksRecords, RemoteFileSystem):
    """Stage results on an fsspec store (S3); a record not written by ``placewright-json`` is refused on read."""

    _block_type_name = "Placewright Remote Results"

    async def aread_path(self, path: str) -> bytes:
        return self._checked(path, await super().aread_path(path))

    @async_dispatch(aread_path)
    def read_path(self, path: str) -> bytes:
        return self._checked(path, super().read_path(path, _sync=True))


def refuse_unsafe_cached_result() -> None:
    """Fail the running task when its cache record exists but is not ours (see the module docstring).

    Runs before a stage's body, i.e. when Prefect found no usable cached result. With ``--refresh``
    (the transaction overwrites) nothing is read, and the record is replaced. A record of ours that does
    not decode (a result class changed since it was written) is computed again, with a warning.
    """
    transaction = get_transaction()
    if transaction is None or not transaction.key or transaction.overwrite:
        return
    storage = getattr(transaction.store, "result_storage", None)
    if not isinstance(storage, _ChecksRecords):
        return
    content = storage.check_stored(transaction.key)
    if content is None:
        return
    try:
        SERIALIZER.loads(json.loads(content)["result"].encode())
    except UnsafeResult as exc:
        where = getattr(storage, "basepath", None)
        _logger().warning("cached result %s in %s cannot be used (%s): computing it again", transaction.key, where, exc)


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)
