"""The quality gate's task: every check of :mod:`placewright.quality` on one finished variant."""

from __future__ import annotations

from placewright.analyze import AnalyzeResult
from placewright.locate import LocateResult
from placewright.quality import QualityReport, check_variant
from placewright.settings import OcrSettings, QualitySettings
from placewright.stages import CHECK
from placewright.store import ImageRef
from tasks.common import StageIO, stage_task
from tasks.refs import CompositeOutput, CutoutOutput, SceneOutput, StagedImage


@stage_task(CHECK)
def check_finished_variant(
    product: ImageRef,
    enhance: StagedImage,
    cutout: CutoutOutput,
    analyze: AnalyzeResult,
    scene: SceneOutput,
    locate: LocateResult,
    composite: CompositeOutput,
    harmonize: StagedImage,
    options: QualitySettings,
    ocr: OcrSettings,
    ocr_models: str,
    store_root: str,
) -> QualityReport:
    """Score the variant against the gate's limits (``ocr_models``: the OCR files' identity, for the cache key)."""
    io = StageIO(store_root)
    return check_variant(
        source=io.get(product),
        source_sha256=product.sha256,
        enhance_scale=enhance.image.width / product.width,
        cutout_box=cutout.box,
        cutout_sha256=cutout.image.sha256,
        cutout_check=cutout.check,
        size_fraction=analyze.analysis.size_fraction,
        scene=io.get(scene.image),
        surface=locate.surface,
        composite=io.get(composite.image),
        product_alpha=io.get(composite.product_alpha),
        product_box=composite.product_box,
        final=io.get(harmonize.image),
        options=options,
        ocr=ocr,
    )
