"""The stage table: the one declaration of the pipeline's stages.

Everything that walks the stages reads :data:`STAGES`: the flows build their task graph from it
(``flows/pipeline.py``), ``placewright models`` lists each stage's backends, the CLI's progress
bar counts its tasks, ``faults.fail_stage`` accepts its names, failure reports name the first
stage that failed, and the manifest records one entry per stage, in this order.

A stage is run **once per product** (``scope="product"``) or **once per variant**
(``scope="variant"``, mapped over the variants in parallel). Its Prefect task (in ``tasks/``,
named here as ``"module:attribute"`` so this core module stays free of Prefect) takes its inputs
by name: a parameter named after an earlier stage receives that stage's output, ``options`` the
stage's settings section, and the other names come from the run (see
:data:`RUN_VALUES`). Adding a stage is one entry here plus its modules (core function and task).

Two steps frame the stages and are not in the table: ``ingest`` (reads the user's images) and
``publish`` (writes the run).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from placewright.analyze import ANALYZERS
from placewright.backends import Registry
from placewright.composite import COMPOSITORS
from placewright.cutout import CUTTERS
from placewright.enhance import ENHANCERS
from placewright.harmonize import HARMONIZERS
from placewright.locate import LOCATORS
from placewright.scene import SCENES

Scope = Literal["product", "variant"]

# What a stage task may take besides earlier stages' outputs and ``options``: per run, the ingested
# product image, its file name, the user's prompts, the surface phrase, the output size, the
# intermediate store, the quality gate's settings (the cut-out checks itself against a second
# opinion), the OCR settings and the OCR models' identity (for cache keys); per variant (mapped), its
# prompt, seed and ingested background (or None).
RUN_VALUES = ("product", "filename", "prompts", "surface", "size", "store_root", "quality_gate", "ocr", "ocr_models")
VARIANT_VALUES = ("prompt", "seed", "background")
# The steps around the stages (fault drills can fail them too): reading the user's images, the
# quality gate on each finished variant (placewright.quality), writing the run.
INGEST, CHECK, PUBLISH = "ingest", "check", "publish"


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline.

    Attributes:
        name: the stage's name (manifest key, task name, ``faults.fail_stage`` value).
        scope: ``"product"`` (once per product) or ``"variant"`` (once per variant).
        registry: its backends and their preference order (None: a step around the stages, no backends).
        section: the :class:`~placewright.settings.Settings` attribute holding its options.
        task: ``"module:attribute"`` of its Prefect task.
    """

    name: str
    scope: Scope
    registry: Registry[Any] | None
    section: str
    task: str


STAGES: tuple[Stage, ...] = (
    Stage("enhance", "product", ENHANCERS, "enhance", "tasks.enhance:enhance_product"),
    Stage("cutout", "product", CUTTERS, "cutout", "tasks.cutout:cut_out_product"),
    Stage("analyze", "product", ANALYZERS, "analyze", "tasks.analyze:analyze_product"),
    Stage("scene", "variant", SCENES, "scene", "tasks.scene:make_scene"),
    Stage("locate", "variant", LOCATORS, "locate", "tasks.locate:locate_surface"),
    Stage("composite", "variant", COMPOSITORS, "composite", "tasks.composite:composite_variant"),
    Stage("harmonize", "variant", HARMONIZERS, "harmonize", "tasks.harmonize:harmonize_variant"),
)


def stages(scope: Scope | None = None) -> tuple[Stage, ...]:
    """The stages in pipeline order (only those of ``scope`` when given)."""
    return tuple(s for s in STAGES if scope is None or s.scope == scope)


def stage(name: str) -> Stage:
    """The stage called ``name``; KeyError naming the known ones otherwise."""
    for found in STAGES:
        if found.name == name:
            return found
    raise KeyError(f"no stage {name!r}; the stages are: {', '.join(s.name for s in STAGES)}")


def task_names() -> tuple[str, ...]:
    """Every step a run's tasks are named after: ingest, the stages, check, publish."""
    return (INGEST, *(s.name for s in STAGES), CHECK, PUBLISH)
