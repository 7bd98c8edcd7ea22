"""Terminal progress for a CLI run, fed by the task-run log records of the running flow.

It listens to the standard ``logging`` records that the orchestrator's task runs emit
("Finished in state ..."), so it needs no hook inside the pipeline. While attached, the
orchestrator's own console output is silenced: the CLI prints its own one-line result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from placewright.manifest import VariantEntry, VariantOutcome
from placewright.stages import stages

TASK_LOGGER = "prefect.task_runs"
ORCHESTRATOR_LOGGER = "prefect"


class _FinishedTaskHandler(logging.Handler):
    def __init__(self, progress: FlowProgress) -> None:
        super().__init__(logging.INFO)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Finished in state"):
            name = getattr(record, "task_run_name", None) or getattr(record, "task_name", "task")
            self.progress.advance(f"{name}: {message.removeprefix('Finished in state ').split('(')[0]}")


class FlowProgress:
    """A progress bar over the run's task runs; a no-op when ``enabled`` is False."""

    def __init__(self, *, total_variants: int, enabled: bool, products: int = 1) -> None:
        self.enabled = enabled
        # Per product: ingest, its product stages and publish; per variant: its variant stages.
        per_product = len(stages("product")) + 2
        self.total = per_product * products + len(stages("variant")) * total_variants
        self._progress: Progress | None = None
        self._task_id = None
        self._handler = _FinishedTaskHandler(self)
        self._silenced: list[tuple[logging.Handler, int]] = []
        self._started = time.perf_counter()

    def __enter__(self) -> FlowProgress:
        if self.enabled:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.start()
            self._task_id = self._progress.add_task("importing Prefect", total=self.total)
        return self

    def note(self, text: str) -> None:
        if self._progress is not None and self._task_id is not None:
            self._progress.update(self._task_id, description=text)

    def advance(self, text: str) -> None:
        if self._progress is not None and self._task_id is not None:
            self._progress.update(self._task_id, advance=1, description=text)

    def attach(self) -> None:
        """Listen to task-run records and silence the orchestrator's console handlers."""
        logger = logging.getLogger(TASK_LOGGER)
        logger.addHandler(self._handler)
        for handler in logging.getLogger(ORCHESTRATOR_LOGGER).handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                self._silenced.append((handler, handler.level))
                handler.setLevel(logging.CRITICAL + 1)
        self.note("running")

    def summary(self, variants: Sequence[VariantEntry | VariantOutcome], folder: str) -> None:
        """After the run: variants made, time taken, their http(s) URLs, and any stage that fell back."""
        if not self.enabled:
            return
        console = Console(stderr=True)
        seconds = time.perf_counter() - self._started
        console.print(f"[green]done[/]: {len(variants)} variant(s) in {seconds:.1f} s -> {folder}")
        for variant in variants:
            if str(variant.url or "").startswith(("http://", "https://")):
                console.print(f"  variant {variant.index}: {variant.url}", soft_wrap=True)
        for variant in variants:
            for stage, record in variant.stages.items() if isinstance(variant, VariantEntry) else ():
                if record.fallback_from:
                    console.print(
                        f"  [yellow]variant {variant.index}, {stage}[/]: used {record.backend} "
                        f"instead of {record.fallback_from} ({record.error})"
                    )

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        logging.getLogger(TASK_LOGGER).removeHandler(self._handler)
        if self._progress is not None:
            self._progress.stop()
