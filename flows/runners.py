"""The flows' task runner, chosen by the ``runner`` settings: threads, Dask or Ray.

Threads are the default (OpenCV and NumPy release the GIL in the heavy loops), on
:class:`~flows.ready_first.ReadyFirstTaskRunner`: a task gets a thread once its inputs are ready. Dask and Ray
spread the stage tasks over a cluster's worker processes: a local cluster started for each
flow run, or an existing one named by ``runner.address``. Workers import ``placewright`` and
``tasks`` themselves, and each keeps its own model cache, so a model is loaded once per worker.
"""

from __future__ import annotations

from prefect.task_runners import TaskRunner

from flows.ready_first import ReadyFirstTaskRunner
from placewright.errors import InvalidInput
from placewright.settings import RunnerSettings, get_settings


def task_runner_from_settings(runner: RunnerSettings | None = None) -> TaskRunner:
    """A task runner for ``runner`` (default: this process's settings).

    Raises:
        InvalidInput: when the engine's Prefect integration is not installed.
    """
    runner = runner if runner is not None else get_settings().runner
    if runner.kind == "threads":
        return ReadyFirstTaskRunner(max_workers=runner.threads)
    if runner.kind == "dask":
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError:
            raise InvalidInput("runner.kind 'dask' needs prefect-dask: pip install 'placewright[dask]'") from None
        if runner.address:
            return DaskTaskRunner(address=runner.address)
        return DaskTaskRunner(
            cluster_kwargs={
                "n_workers": runner.workers,
                "threads_per_worker": runner.threads_per_worker,
                "processes": True,
                "dashboard_address": None,
            }
        )
    try:
        from prefect_ray import RayTaskRunner
    except ImportError:
        raise InvalidInput("runner.kind 'ray' needs prefect-ray: pip install 'placewright[ray]'") from None
    return RayTaskRunner(address=runner.address) if runner.address else RayTaskRunner()
