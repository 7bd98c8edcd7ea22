"""The campaign flow on a Dask cluster (prefect-dask), and how ``runner`` settings pick the task runner.

The cluster is started here (not by the task runner) so that the test can ask its workers afterwards
what ran there: every stage task ran on a worker process, and each worker loaded the upscaler once.
Worker processes inherit the environment they are started with, so the Prefect API URL of the test
server and the placewright settings are put in ``os.environ`` before the cluster starts (without the
URL, each worker would start its own temporary Prefect server).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml
from distributed import Client, LocalCluster, Worker
from PIL import Image
from prefect.task_runners import ThreadPoolTaskRunner
from prefect_dask import DaskTaskRunner

from flows.campaign import run_campaign
from flows.runners import task_runner_from_settings
from placewright.errors import InvalidInput
from placewright.models import MODELS
from placewright.settings import RunnerSettings, get_settings
from tests.core.test_enhance_spandrel import write_checkpoint
from tests.synth import make_product_photo

pytestmark = pytest.mark.usefixtures("prefect_server")

SCENES = ["sunlit marble counter", "rustic wooden table", "pastel pink studio"]
SIZE = (384, 384)
# One product task each (enhance, cut out, analyze) per product, four variant tasks per variant.
SUBMITTED_TASKS = 2 * 3 + 2 * len(SCENES) * 4


def _model_loads() -> dict:
    """Run on a worker: how often this process really loaded each model (its process-wide cache)."""
    from placewright.models.cache import MODELS

    return dict(MODELS.loads)


def _executed_tasks(dask_worker: Worker) -> int:
    """Run on a worker (distributed passes the worker by this argument's name): how many Dask tasks it executed."""
    return dask_worker.state.executed_count


def _campaign(folder: Path) -> Path:
    """2 products x 3 scenes; the photos' long side (256) is below the enhance target (512): enhance upscales."""
    bottle, _ = make_product_photo("bottle", product_rgb=(40, 110, 60), size=(192, 256), seed=1)
    box, _ = make_product_photo("box", product_rgb=(200, 60, 40), size=(256, 192), seed=2)
    Image.fromarray(bottle).save(folder / "green-bottle.png")
    Image.fromarray(box).save(folder / "red-box.png")
    document = {
        "name": "dask-test",
        "out": "out",
        "options": {"size": f"{SIZE[0]}x{SIZE[1]}", "seed": 5},
        "products": [{"path": "green-bottle.png"}, {"path": "red-box.png", "surface": "shelf"}],
        "scenes": [{"prompt": p} for p in SCENES],
    }
    path = folder / "campaign.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _prepare_environment(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings for this process and the worker processes to come: the test server, the tiny upscaler."""
    from prefect.settings import PREFECT_API_URL

    checkpoint = write_checkpoint(folder)
    monkeypatch.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    monkeypatch.setenv("PREFECT_LOCAL_STORAGE_PATH", os.environ["PREFECT_LOCAL_STORAGE_PATH"])
    monkeypatch.setenv("PLACEWRIGHT_MODELS_DIR", str(folder / "models"))
    monkeypatch.setenv("PLACEWRIGHT_ENHANCE__UPSCALER__MODEL", str(checkpoint))
    monkeypatch.setenv("PLACEWRIGHT_ENHANCE__UPSCALER__DEVICE", "cpu")  # (only beside MODEL: env replaces the spec)
    monkeypatch.setenv("PLACEWRIGHT_ENHANCE__TARGET_LONG_SIDE", "512")
    get_settings.cache_clear()
    return checkpoint


def test_campaign_on_a_local_dask_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checkpoint = _prepare_environment(tmp_path, monkeypatch)
    path = _campaign(tmp_path)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster, set_as_default=False)
    try:
        runner = task_runner_from_settings(RunnerSettings(kind="dask", address=cluster.scheduler_address))
        state = run_campaign.with_options(task_runner=runner)(campaign_file=str(path), return_state=True)
        assert state.is_completed(), state.message
        summary = state.result().model_dump(mode="json")
        run_dir = tmp_path / "out" / "dask-test" / summary["run_id"]
        assert json.loads((run_dir / "campaign.json").read_text()) == summary
        assert summary["status"] == "completed" and summary["variants"] == summary["published_variants"] == 6
        for product in summary["products"]:
            manifest = json.loads((run_dir / product["name"] / "manifest.json").read_text())
            assert [v["prompt"] for v in manifest["variants"]] == SCENES
            for variant in manifest["variants"]:
                enhance = variant["stages"]["enhance"]
                assert enhance["backend"] == "spandrel" and enhance["fallback_from"] is None, enhance
                assert Image.open(run_dir / product["name"] / variant["image"]).size == SIZE

        assert set(client.run(os.getenv, "PREFECT_API_URL").values()) == {os.environ["PREFECT_API_URL"]}
        executed = client.run(_executed_tasks)
        assert len(executed) == 2 and sum(executed.values()) >= SUBMITTED_TASKS, executed
        loads = client.run(_model_loads)
        pids = client.run(os.getpid)
        assert os.getpid() not in pids.values() and len(set(pids.values())) == 2
        spandrel = [key for counts in loads.values() for key in counts if key[:2] == ("spandrel", str(checkpoint))]
        assert spandrel, f"no worker loaded the upscaler: {loads}"
        for worker, counts in loads.items():
            assert all(n == 1 for n in counts.values()), f"worker {worker} loaded a model twice: {counts}"
        assert not any(key[:2] == ("spandrel", str(checkpoint)) for key in MODELS.loads), "enhance ran in the test"
    finally:
        client.close()
        cluster.close()


def test_threads_is_the_default_and_missing_engines_are_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    threads = task_runner_from_settings(RunnerSettings())
    assert isinstance(threads, ThreadPoolTaskRunner) and threads._max_workers == 4

    dask = task_runner_from_settings(RunnerSettings(kind="dask"))
    assert isinstance(dask, DaskTaskRunner) and dask.address is None
    assert dask.cluster_kwargs["processes"] is True and dask.cluster_kwargs["n_workers"] == 2
    assert dask.cluster_kwargs["threads_per_worker"] == 1

    remote = task_runner_from_settings(RunnerSettings(kind="dask", address="tcp://10.0.0.5:8786"))
    assert remote.address == "tcp://10.0.0.5:8786" and remote.cluster_kwargs == {}

    monkeypatch.setitem(sys.modules, "prefect_ray", None)  # as if prefect-ray were not installed
    with pytest.raises(InvalidInput, match="prefect-ray"):
        task_runner_from_settings(RunnerSettings(kind="ray"))
