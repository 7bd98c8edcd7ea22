"""Cached stage results are data, not code: written as placewright-json, and any other record is refused unread.

A planted record (a pickle that would create a marker file when loaded, or a record of Prefect's "json"
serializer naming a class whose validation creates one) is put in place of a stage's cached result; the
next run of the same request fails with one line naming the serializer, and the marker never appears.
Each crafted record is first shown to run its payload when Prefect itself reads it (the control).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prefect.results import ResultRecord, ResultRecordMetadata, ResultStore
from prefect.serializers import JSONSerializer, PickleSerializer
from pydantic import BaseModel, model_validator

from flows.pipeline import result_storage
from placewright.errors import UnsafeResult
from placewright.settings import get_settings
from tasks.refs import CutoutOutput
from tasks.results import (
    RESULT_TYPES,
    SERIALIZER,
    LocalResults,
    PlacewrightJSONSerializer,
    RemoteResults,
    checked_record,
    encode,
)
from tests.flows.runs import place, place_state
from tests.s3 import MotoS3

ROOT = Path(__file__).resolve().parents[2]
REQUEST = dict(prompts=["white studio"], size="256x256", seed=1)


@pytest.fixture(autouse=True)
def stage_by_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about the stages' own caches: no copying of an identical earlier run."""
    monkeypatch.setenv("PLACEWRIGHT_REUSE_IDENTICAL_RUNS", "false")


def refusal(key: str, storage: str, serializer: str) -> str:
    return (
        f"refusing cached result {key} in {storage}: written by the {serializer!r} serializer; "
        "only placewright-json results are read (a results store must hold data, not code)"
    )


class TouchOnLoad:
    """Unpickling this creates ``path`` (no shell: ``pathlib.Path.touch``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


class Canary(BaseModel):
    """Validating this (as Prefect's json serializer does for any class a record names) creates ``path``."""

    path: str

    @model_validator(mode="after")
    def _touch(self) -> Canary:
        Path(self.path).touch()
        return self


def pickle_record(key: str, marker: Path) -> bytes:
    return ResultRecord(
        metadata=ResultRecordMetadata(storage_key=key, serializer=PickleSerializer()), result=TouchOnLoad(marker)
    ).serialize()


def json_record(key: str, marker: Path) -> bytes:
    return ResultRecord(
        metadata=ResultRecordMetadata(storage_key=key, serializer=JSONSerializer()),
        result=Canary.model_construct(path=str(marker)),  # constructed without validation: nothing touched yet
    ).serialize()


def prefect_would_run(record: bytes, marker: Path) -> bool:
    """The control: Prefect's own reading of ``record`` creates ``marker``."""
    ResultRecord.deserialize(record)
    return marker.exists()


def decoded(content: bytes) -> Any:
    return ResultRecord.deserialize(content).result


@pytest.fixture
def results_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own local results folder (``storage.results``)."""
    folder = tmp_path / "results"
    monkeypatch.setenv("PLACEWRIGHT_STORAGE__RESULTS", str(folder))
    get_settings.cache_clear()
    return folder.resolve()


def cutout_key(records: dict[str, bytes]) -> str:
    """The key of the cut-out stage's record (a product stage: its failure is the run's)."""
    (key,) = [k for k, content in records.items() if isinstance(decoded(content), CutoutOutput)]
    return key


def local_records(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


# --- the serializer ---------------------------------------------------------------------------


def test_decoder_refuses_unknown_tags_and_shapes() -> None:
    refused = {
        b'{"$":"os.system","fields":{}}': "unknown type tag 'os.system'",
        b'{"$":"tests.flows.test_result_safety.Canary","fields":{"path":"x"}}': "unknown type tag",
        b'{"$":"builtins.eval","fields":{}}': "unknown type tag 'builtins.eval'",
        b'{"$":"placewright.types.Box","fields":{"x0":1,"y0":1,"x1":2,"y1":2,"evil":1}}': "has no field 'evil'",
        b'{"$":"placewright.types.Box","fields":{"x0":"a","y0":1,"x1":2,"y1":2}}': "a bad placewright.types.Box",
        b'{"$":"tuple","items":[],"extra":1}': "must be",
        b'{"__class__":"pathlib.Path","data":"/tmp"}': "an untagged dict",
        b'{"$":"dict","items":[1]}': "pairs",
        b"\x80\x04K\x01.": "not placewright result data",  # a pickle
    }
    for blob, why in refused.items():
        with pytest.raises(UnsafeResult, match=why):
            SERIALIZER.loads(blob)
    with pytest.raises(TypeError, match="not a placewright result type"):
        SERIALIZER.dumps(Canary.model_construct(path="x"))
    with pytest.raises(TypeError, match="not a placewright result type"):
        encode(Path("/tmp"))


def test_checked_record_refuses_every_way_of_naming_another_serializer(tmp_path: Path) -> None:
    ours = ResultRecord(metadata=ResultRecordMetadata(serializer=SERIALIZER), result=None).serialize()
    assert json.loads(checked_record(ours, "k", "store")) == json.loads(ours)
    marker = tmp_path / "marker"
    pickled = pickle_record("k", marker)
    refused = {
        pickled: "written by the 'pickle' serializer",
        json_record("k", marker): "written by the 'json' serializer",
        # Prefect moves a top-level "serializer" into the metadata, over the one there.
        json.dumps({**json.loads(ours), "serializer": {"type": "pickle"}}).encode(): "'pickle' serializer",
        # Parsers disagree on which of two equal keys counts: refused, whichever it would be.
        ours[:-1] + b',"metadata":{"serializer":{"type":"pickle"}}}': "not a JSON result record",
        json.dumps({**json.loads(ours), "result": {"a": 1}}).encode(): "result is not serialized data",
        json.dumps({"metadata": {"serializer": {"type": SERIALIZER.type, "picklelib": "os"}}, "result": ""}).encode(): (
            "unexpected shape"
        ),
        json.dumps({"data": "x"}).encode(): "names no serializer",
        json.dumps({"metadata": {"serializer": "pickle"}, "result": "x"}).encode(): "'pickle' serializer",
        b"\x80\x04K\x01.": "not a JSON result record",
    }
    for content, why in refused.items():
        with pytest.raises(UnsafeResult, match=why):
            checked_record(content, "k", "store")
    assert not marker.exists()


def test_every_result_type_round_trips() -> None:
    """Each allowlisted class comes back equal, with every float exact (no rounding on the way)."""
    from placewright.analyze import Analysis, AnalyzeResult
    from placewright.backends import StageRecord
    from placewright.locate import LocateResult
    from placewright.quality import Check, QualityReport
    from placewright.store import ImageRef
    from placewright.types import Box, Surface
    from tasks.refs import CompositeOutput, SceneOutput, StagedImage

    ref = ImageRef("file:///blobs/ab.npy", "ab" * 32, 640, 480, 4)
    record = StageRecord("grabcut", 0.123456789, fallback_from="sam", error="HTTP 503", skipped=("u2net: no weights",))
    check = Check(name="fidelity", status="pass", score=1.234567891, limit=40.0, detail="ok")
    surface = Surface(line_y=300, center_x=200, box=Box(1, 2, 3, 4), backend="procedural", confidence=0.5)
    values = [
        ref,
        StagedImage(ref, record),
        CutoutOutput(ref, Box(0, 0, 10, 20), record, check),
        CutoutOutput(ref, Box(0, 0, 10, 20), record),
        SceneOutput(ref, surface, record),
        SceneOutput(ref, None, record),
        CompositeOutput(ref, ref, Box(5, 6, 7, 8), record),
        AnalyzeResult(
            Analysis(name="olive oil bottle", category="bottle", size_fraction=0.123456789, aspect=2.5), record
        ),
        LocateResult(surface, record),
        QualityReport.of([check, check.model_copy(update={"name": "shadow", "status": "fail"})]),
    ]
    for value in values:
        assert SERIALIZER.loads(SERIALIZER.dumps(value)) == value
    assert {type(v) for v in values} <= set(RESULT_TYPES)


# --- flows: local results ------------------------------------------------------------------------


@pytest.mark.usefixtures("prefect_server")
def test_persisted_results_are_placewright_json_and_decode_to_what_the_tasks_returned(
    example_product: Path, results_dir: Path, monkeypatch: pytest.MonkeyPatch, stage_calls: dict
) -> None:
    written: dict[bytes, Any] = {}
    real_dumps = PlacewrightJSONSerializer.dumps

    def recording_dumps(self: PlacewrightJSONSerializer, obj: Any) -> bytes:
        blob = real_dumps(self, obj)
        written[blob] = obj
        return blob

    monkeypatch.setattr(PlacewrightJSONSerializer, "dumps", recording_dumps)
    request = {**REQUEST, "prompts": ["white studio", "wooden table"]}
    first = place(example_product, **request)
    records = local_records(results_dir)
    # ingest, enhance, cutout, analyze; scene, locate, composite, harmonize, check per variant
    assert len(records) == 4 + 5 * 2, sorted(records)
    for content in records.values():
        record = json.loads(content)
        assert set(record) == {"metadata", "result"}
        assert record["metadata"]["serializer"] == {"type": "placewright-json"}
        assert record["metadata"]["storage_block_id"], "saved block: read back by id through the same check"
        value = decoded(content)
        assert value == written[record["result"].encode()], "decodes to the very value the task returned"
        assert type(value) in RESULT_TYPES
    ran = dict(stage_calls)
    second = place(example_product, **request)
    assert stage_calls == ran, "every stage was Cached: read back from the JSON records"
    assert local_records(results_dir) == records
    for a, b in zip(first["variants"], second["variants"], strict=True):
        assert a["sha256"] == b["sha256"] and a["stages"] == b["stages"] and a["quality"] == b["quality"]


@pytest.mark.usefixtures("prefect_server")
@pytest.mark.parametrize("craft", [pickle_record, json_record], ids=["pickle", "prefect-json"])
def test_a_planted_record_fails_the_run_and_runs_nothing(
    craft: Any, example_product: Path, results_dir: Path, tmp_path: Path, stage_calls: dict
) -> None:
    first = place_state(example_product, **REQUEST)
    assert first.is_completed()
    key = cutout_key(local_records(results_dir))
    control = tmp_path / "control"
    assert prefect_would_run(craft(key, control), control), "the crafted record runs code when Prefect reads it"

    marker = tmp_path / "marker"
    planted = craft(key, marker)
    (results_dir / key).write_bytes(planted)
    state = place_state(example_product, **REQUEST)
    assert state.is_failed()
    serializer = "pickle" if craft is pickle_record else "json"
    expected = refusal(key, str(results_dir), serializer)
    with pytest.raises(UnsafeResult) as raised:
        state.result()
    assert str(raised.value) == expected
    assert expected in state.message
    assert stage_calls["cutout"] == 1, "the stage neither loaded the record nor ran again over it"
    assert (results_dir / key).read_bytes() == planted, "left in place for the operator to see"
    assert not marker.exists()

    # Another process reading that stage's result through the API (the storage block loaded by id):
    # refused the same way.
    cutout_run = _task_run_with_key(first.state_details.flow_run_id, key)
    script = (
        "import sys, uuid\n"
        "import tasks.results  # every placewright process imports it (flows, workers)\n"
        "from prefect import get_client\n"
        "with get_client(sync_client=True) as client:\n"
        "    state = client.read_task_run(uuid.UUID(sys.argv[1])).state\n"
        "try:\n"
        "    state.result(retry_result_failure=False)\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    out = subprocess.run(
        [sys.executable, "-c", script, str(cutout_run)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.strip() == f"UnsafeResult {expected}", out.stderr[-2000:]
    assert not marker.exists()


def _task_run_with_key(flow_run_id: Any, key: str) -> Any:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    (run,) = [r for r in runs if getattr(r.state.data, "storage_key", None) == key]
    return run.id


@pytest.mark.usefixtures("prefect_server")
def test_refresh_rewrites_a_planted_record_without_reading_it(
    example_product: Path, results_dir: Path, tmp_path: Path
) -> None:
    place(example_product, **REQUEST)
    key = cutout_key(local_records(results_dir))
    marker = tmp_path / "marker"
    (results_dir / key).write_bytes(pickle_record(key, marker))
    place(example_product, **REQUEST, refresh=True)
    assert json.loads((results_dir / key).read_bytes())["metadata"]["serializer"] == {"type": "placewright-json"}
    assert not marker.exists()


@pytest.mark.usefixtures("prefect_server")
def test_a_record_of_ours_that_does_not_decode_is_computed_again(
    example_product: Path, results_dir: Path, stage_calls: dict
) -> None:
    place(example_product, **REQUEST)
    key = cutout_key(local_records(results_dir))
    record = json.loads((results_dir / key).read_bytes())
    record["result"] = json.dumps({"$": "os.system", "fields": {"command": "touch /tmp/x"}})
    (results_dir / key).write_text(json.dumps(record))
    place(example_product, **REQUEST)
    assert stage_calls["cutout"] == 2, "an unknown tag is no result: the stage ran again"
    assert isinstance(decoded((results_dir / key).read_bytes()), CutoutOutput), "and its record was replaced"


@pytest.mark.usefixtures("prefect_server")
def test_result_storage_is_a_checked_block(results_dir: Path, tmp_path: Path) -> None:
    storage = result_storage(str(tmp_path / "out"), get_settings())
    assert isinstance(storage, LocalResults) and storage._block_document_id is not None
    marker = tmp_path / "marker"
    (results_dir / "k").parent.mkdir(parents=True, exist_ok=True)
    (results_dir / "k").write_bytes(pickle_record("k", marker))
    store = ResultStore(result_storage=storage, serializer=SERIALIZER)
    assert not store.exists("k"), "Prefect's exists() sees no usable record"
    with pytest.raises(UnsafeResult, match="'pickle' serializer"):
        store.read("k")
    with pytest.raises(UnsafeResult, match="'pickle' serializer"):
        storage.check_stored("k")
    storage.check_stored("absent")
    assert not marker.exists()


# --- flows: results on S3 --------------------------------------------------------------------------


@pytest.mark.usefixtures("prefect_server")
def test_a_planted_pickle_on_s3_fails_the_run_and_runs_nothing(
    s3: MotoS3, example_product: Path, tmp_path: Path, stage_calls: dict
) -> None:
    bucket = s3.new_bucket()
    out = f"s3://{bucket}/ads"
    prefix = "ads/.placewright/results/"
    place(example_product, **REQUEST, out=out)
    client = s3.client()
    records = {
        k.removeprefix(prefix): client.get_object(Bucket=bucket, Key=k)["Body"].read()
        for k in s3.objects(bucket, prefix)
    }
    assert records and all(
        json.loads(c)["metadata"]["serializer"]["type"] == "placewright-json" for c in records.values()
    )
    key = cutout_key(records)
    storage = result_storage(out, get_settings())
    assert isinstance(storage, RemoteResults)

    marker = tmp_path / "marker"
    client.put_object(Bucket=bucket, Key=prefix + key, Body=pickle_record(key, marker))
    state = place_state(example_product, **REQUEST, out=out)
    assert state.is_failed()
    with pytest.raises(UnsafeResult) as raised:
        state.result()
    assert str(raised.value) == refusal(key, f"{out}/.placewright/results", "pickle")
    assert stage_calls["cutout"] == 1
    assert not marker.exists()
