"""What a run shows in the Prefect UI: progress while variants finish, then images, a table and a summary.

- a progress artifact, updated as each variant finishes;
- one image artifact per variant whose URL a browser can open (http/https: presigned or public);
- a table artifact: variant, scene, verdict, backends, seconds, URL;
- a markdown summary (key ``place-product-run``) with the contact sheet, the product, the run folder,
  the gallery and the manifest. The contact sheet is embedded as a small ``data:`` JPEG: the UI shows
  no ``file://`` image (the browser blocks it), so this is the one picture a run with a local output
  folder can show, and it needs no store a browser can reach.
"""

from __future__ import annotations

import base64
import time
from uuid import UUID

from prefect.artifacts import (
    create_image_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from placewright.manifest import Manifest

SUMMARY_KEY = "place-product-run"
# The progress artifact's shortest interval between updates.
PROGRESS_EVERY_S = 1.0
TABLE_KEY = "place-product-variants"


class VariantProgress:
    """A progress artifact at ``finished / total`` variants.

    Updated at most every ``every_s`` seconds, and always at the last variant: each update is a write on the
    server, and a fast run's variants finish a few milliseconds apart.
    """

    def __init__(self, run_id: str, total: int, every_s: float = PROGRESS_EVERY_S) -> None:
        self.total = max(total, 1)
        self.finished = 0
        self.every_s = every_s
        self.artifact_id: UUID = create_progress_artifact(
            progress=0.0, description=f"run {run_id}: variants finished (0/{total})"
        )
        self.run_id = run_id
        self.shown_at = time.monotonic()

    def variant_finished(self) -> None:
        self.finished += 1
        if self.finished < self.total and time.monotonic() - self.shown_at < self.every_s:
            return
        self.shown_at = time.monotonic()
        update_progress_artifact(
            self.artifact_id,
            progress=round(100.0 * self.finished / self.total, 1),
            description=f"run {self.run_id}: variants finished ({self.finished}/{self.total})",
        )


def is_browsable(url: str | None) -> bool:
    """True for URLs the Prefect UI can display (not file:// or s3://)."""
    return bool(url) and str(url).startswith(("http://", "https://"))


def variant_rows(manifest: Manifest) -> list[dict]:
    """One table row per variant: index, scene, backends, seconds, URL."""
    return [
        {
            "variant": variant.index,
            "scene": variant.scene_label,
            "verdict": variant.verdict,
            "backends": ", ".join(f"{stage}: {record.backend}" for stage, record in variant.stages.items()),
            "seconds": round(sum(record.seconds for record in variant.stages.values()), 2),
            "url": variant.url,
        }
        for variant in manifest.variants
    ]


def embedded_image(jpeg: bytes, alt: str) -> str:
    """Markdown for an image carried inside the artifact itself (a ``data:`` URL)."""
    return f"![{alt}](data:image/jpeg;base64,{base64.b64encode(jpeg).decode('ascii')})"


def report_run(manifest: Manifest, manifest_url: str, sheet_preview: bytes | None = None) -> None:
    """Create the image, table and summary artifacts of a published run."""
    run_id = manifest.run_id
    for variant in manifest.variants:
        url = variant.preview_url or variant.url
        if is_browsable(url):
            create_image_artifact(image_url=url, description=f"run {run_id}, variant {variant.index}: {variant.image}")
    create_table_artifact(table=variant_rows(manifest), key=TABLE_KEY, description=f"place-product run {run_id}")
    analysis = manifest.product.analysis
    review = [v.index for v in manifest.variants if v.verdict == "needs_review"]
    lines = [f"# Run {run_id}", ""]
    if sheet_preview is not None:
        lines += [embedded_image(sheet_preview, "contact sheet"), ""]
    if review or manifest.dropped:
        lines += [
            f"**Quality gate:** {len(review)} variant(s) need review ({', '.join(map(str, review)) or '-'}), "
            f"{len(manifest.dropped)} left out.",
            "",
        ]
    lines += [
        f"Product: `{manifest.product.source}` ({analysis.name}, {analysis.category}, "
        f"size fraction {analysis.size_fraction:.2f})",
        "",
        f"Run folder: `{manifest.location}`  ",
        f"Manifest: [manifest.json]({manifest_url})  ",
        f"Gallery: [index.html]({manifest.gallery_url})",
        "",
        "| # | scene | verdict | image | backends |",
        "|---|---|---|---|---|",
    ]
    for row, variant in zip(variant_rows(manifest), manifest.variants, strict=True):
        image = f"[{variant.image}]({variant.url})"
        if is_browsable(variant.preview_url):
            image = f"[![{variant.image}]({variant.preview_url})]({variant.url})"
        verdict = row["verdict"]
        if variant.quality is not None and not variant.quality.passed:
            verdict = f"{verdict}: {variant.quality.summary()}"
        lines.append(f"| {row['variant']} | {row['scene']} | {verdict} | {image} | {row['backends']} |")
    create_markdown_artifact(
        key=SUMMARY_KEY, markdown="\n".join(lines) + "\n", description=f"run {run_id}: contact sheet, verdicts, links"
    )
