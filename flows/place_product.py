"""The ``place-product`` flow: one product photo, one finished image per scene.

Product stages (enhance, cut out, analyze) run once; scene stages (scene, locate,
composite, harmonize) are mapped over the variants and run in parallel, starting while the
product is still being cut out. Every stage is a cached, retried Prefect task that falls
back to its classical backend; publishing writes the run folder atomically at the end.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, unmapped
from prefect.artifacts import create_markdown_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from placewright.publish import new_run_id
from placewright.request import build_request
from placewright.settings import Settings, get_settings
from tasks.analyze import analyze_product
from tasks.composite import composite_variant
from tasks.cutout import cut_out_product
from tasks.enhance import enhance_product
from tasks.harmonize import harmonize_variant
from tasks.ingest import ingest_image
from tasks.locate import locate_surface
from tasks.publish import ProductParts, VariantParts, publish_outputs
from tasks.refs import VariantSpec
from tasks.scene import make_scene

# Threads suffice: OpenCV and NumPy release the GIL in the heavy loops.
MAX_PARALLEL_TASKS = 4


@flow(name="place-product", task_runner=ThreadPoolTaskRunner(max_workers=MAX_PARALLEL_TASKS))
def place_product(
    product: str,
    prompts: list[str] | None = None,
    backgrounds: list[str] | None = None,
    surface: str | None = None,
    size: str | None = None,
    seed: int | None = None,
    format: str | None = None,
    out: str | None = None,
    refresh: bool = False,
) -> dict:
    """Place ``product`` in one scene per prompt and per background; returns the run manifest.

    Args:
        product: path of the product photo.
        prompts: scene prompts, one variant each.
        backgrounds: paths of background images to use as they are, one variant each.
        surface: what the product stands on ("table", "countertop"); default from settings.
        size: output size WIDTHxHEIGHT; default from settings.
        seed: base seed; variant i uses seed + i.
        format: webp, jpeg or png.
        out: folder (or fsspec URL) the run folder is written under.
        refresh: recompute every stage instead of reusing cached results.
    """
    settings = get_settings()
    logger = get_run_logger()
    request = build_request(
        product,
        prompts=prompts,
        backgrounds=backgrounds,
        surface=surface,
        size=size,
        seed=seed,
        format=format,
        out=out,
        settings=settings,
    )
    run_id = new_run_id()
    root = str(Path(settings.cache_dir) / "blobs")
    ingest, enhance, cut, analyze, scene, locate, place, relight = (
        _configured(t, settings, refresh)
        for t in (
            ingest_image,
            enhance_product,
            cut_out_product,
            analyze_product,
            make_scene,
            locate_surface,
            composite_variant,
            harmonize_variant,
        )
    )
    logger.info("run %s: %d variant(s) of %s", run_id, len(request.variants), request.product.path)

    specs = [
        VariantSpec(
            index=v.index,
            seed=v.seed,
            prompt=v.prompt,
            background=ingest(v.background.path, v.background.sha256, settings.limits, root, "background image")
            if v.background
            else None,
            background_source=v.background.path if v.background else None,
        )
        for v in request.variants
    ]
    size_text = str(request.size)
    scenes = scene.map(specs, unmapped(size_text), unmapped(settings.scene), unmapped(root))
    located = locate.map(scenes, unmapped(request.surface), unmapped(settings.locate), unmapped(root))

    product_ref = ingest(request.product.path, request.product.sha256, settings.limits, root, "product image")
    enhanced = enhance(product_ref, settings.enhance, root)
    cutout = cut(enhanced.image, settings.cutout, root)
    analysis = analyze(cutout, Path(request.product.path).name, request.prompts, settings.analyze, root)

    composites = place.map(
        scenes,
        located,
        unmapped(cutout),
        unmapped(analysis),
        unmapped(settings.composite),
        [s.seed for s in specs],
        unmapped(root),
        unmapped(request.surface),
    )
    finals = relight.map(composites, unmapped(settings.harmonize), unmapped(root))

    parts = [
        VariantParts(spec, s.result(), loc.result(), c.result(), f.result())
        for spec, s, loc, c, f in zip(specs, scenes, located, composites, finals, strict=True)
    ]
    manifest = publish_outputs(
        run_id,
        request.out_dir,
        ProductParts(request.product.path, request.product.sha256, enhanced, cutout, analysis),
        parts,
        settings.output.model_copy(update={"format": request.format}),
        root,
    )
    _report(manifest, request.out_dir)
    return manifest


def _configured(task, settings: Settings, refresh: bool):
    """The task with this run's retry policy (and cache refresh) applied."""
    return task.with_options(
        retries=settings.retry.retries,
        retry_delay_seconds=list(settings.retry.delay_seconds),
        refresh_cache=refresh or None,
    )


def _report(manifest: dict, out_dir: str) -> None:
    """A markdown artifact listing each variant: image, prompt and stage backends."""
    rows = [
        "| # | scene | image | backends |",
        "|---|---|---|---|",
    ]
    for v in manifest["variants"]:
        scene = v["prompt"] if v["prompt"] is not None else f"background `{v['background']}`"
        backends = ", ".join(f"{stage}: {s['backend']}" for stage, s in v["stages"].items())
        rows.append(f"| {v['index']} | {scene} | [{v['image']}]({v['url']}) | {backends} |")
    analysis = manifest["product"]["analysis"]
    create_markdown_artifact(
        key="place-product-run",
        markdown=(
            f"# Run {manifest['run_id']}\n\nProduct: `{manifest['product']['source']}` "
            f"({analysis['name']}, {analysis['category']}, size fraction {analysis['size_fraction']:.2f})\n\n"
            f"Run folder: `{out_dir}/{manifest['run_id']}`\n\n" + "\n".join(rows) + "\n"
        ),
        description=f"place-product run {manifest['run_id']}",
    )


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(place_product(sys.argv[1], prompts=sys.argv[2:]), indent=2))
