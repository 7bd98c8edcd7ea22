"""``index.html`` galleries published beside each run and each campaign run.

One static page, no scripts: the contact sheet, then every variant as a figure (preview linked to
the full image) with its scene, seed, verdict, failed checks and backends. Links are relative to
the page, so the same file works from a local folder, a bucket website or a CDN. On a store
reached through presigned URLs a relative link would carry no signature, so there the page links
the objects' own (presigned) URLs, which expire with them.
"""

from __future__ import annotations

from html import escape

from placewright.manifest import CampaignSummary, Manifest, VariantEntry

GALLERY_NAME = "index.html"

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 24px; color: #222; background: #f6f6f4; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; }
.meta { color: #666; margin: 0 0 16px; }
.sheet img { max-width: 100%; border: 1px solid #ddd; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(280px, 1fr)); gap: 16px; }
figure { margin: 0; background: #fff; border: 1px solid #ddd; padding: 8px; }
figure img { width: 100%; height: auto; display: block; }
figcaption { font-size: 13px; color: #555; margin-top: 6px; }
.badge { display: inline-block; color: #fff; border-radius: 4px; padding: 0 6px; font-size: 12px; }
.passed { background: #2e7d32; } .needs_review { background: #e67e00; } .dropped, .failed { background: #c62828; }
.unchecked { background: #757575; }
"""


def _link(relative: str | None, url: str | None, absolute: bool) -> str:
    """Where a page link points: the object's URL on presigned stores, else the path relative to the page."""
    chosen = url if absolute else relative
    return escape(chosen or "", quote=True)


def _page(title: str, body: list[str]) -> str:
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en">',
            '<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title><style>{STYLE}</style></head>",
            "<body>",
            *body,
            "</body>",
            "</html>",
            "",
        ]
    )


def _badge(verdict: str, text: str | None = None) -> str:
    shown = text if text is not None else verdict.replace("_", " ")
    return f'<span class="badge {escape(verdict, quote=True)}">{escape(shown)}</span>'


def _figure(variant: VariantEntry, absolute: bool, prefix: str = "") -> str:
    full = _link(prefix + variant.image, variant.url, absolute)
    shown = _link(prefix + (variant.preview or variant.image), variant.preview_url or variant.url, absolute)
    failed = ""
    if variant.quality is not None and not variant.quality.passed:
        failed = f"<br>failed: {escape(variant.quality.summary())}"
    backends = ", ".join(f"{stage}: {record.backend}" for stage, record in variant.stages.items())
    alt = escape(variant.scene_label, quote=True)
    return (
        f'<figure><a href="{full}"><img src="{shown}" alt="{alt}" loading="lazy"></a>'
        f"<figcaption>#{variant.index} · seed {variant.seed} · {_badge(variant.verdict)}<br>"
        f"{escape(variant.scene_label)}{failed}<br><small>{escape(backends)}</small></figcaption></figure>"
    )


def run_gallery(manifest: Manifest, *, absolute: bool = False) -> str:
    """The gallery of one product run (``index.html`` in its folder).

    Args:
        manifest: the run's manifest (paths relative to the run folder, and URLs).
        absolute: link objects by the manifest's URLs (presigned stores) instead of relative paths; the
            manifest itself is then not linked (its own URL is signed anew each time, and the page is
            made once per run).
    """
    product = manifest.product
    title = f"{product.analysis.name} · run {manifest.run_id}"
    manifest_link = "" if absolute else ' · <a href="manifest.json">manifest.json</a>'
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">{escape(product.source)} · {len(manifest.variants)} variant(s){manifest_link} · '
        f'<a href="{_link(product.cutout, product.cutout_url, absolute)}">cut-out</a></p>',
    ]
    if manifest.contact_sheet:
        sheet = _link(manifest.contact_sheet, manifest.contact_sheet_url, absolute)
        body.append(f'<p class="sheet"><a href="{sheet}"><img src="{sheet}" alt="contact sheet"></a></p>')
    body.append('<div class="grid">')
    body.extend(_figure(variant, absolute) for variant in manifest.variants)
    body.append("</div>")
    if manifest.dropped:
        body.append("<h2>Left out by the quality gate</h2><ul>")
        for dropped in manifest.dropped:
            body.append(
                f"<li>#{dropped.index} · seed {dropped.seed} · {escape(dropped.scene_label)}: "
                f"{escape(dropped.quality.summary())} (made {dropped.attempts} time(s))</li>"
            )
        body.append("</ul>")
    return _page(title, body)


def campaign_gallery(
    summary: CampaignSummary, manifests: dict[str, Manifest], *, contact_sheet: str | None, absolute: bool = False
) -> str:
    """The gallery of a campaign run (``index.html`` in the campaign run's folder).

    Args:
        summary: the campaign's summary.
        manifests: each published product's manifest, by product name (its folder under the campaign run).
        contact_sheet: the campaign's contact sheet, relative to the page (or its URL when ``absolute``).
        absolute: link objects by their URLs (presigned stores) instead of relative paths.
    """
    title = f"Campaign {summary.campaign} · run {summary.run_id}"
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">{summary.published_variants} of {summary.variants} variant(s) published · '
        f"status {escape(summary.status)}</p>",
    ]
    if contact_sheet:
        sheet = escape(contact_sheet, quote=True)
        body.append(f'<p class="sheet"><a href="{sheet}"><img src="{sheet}" alt="contact sheet"></a></p>')
    for product in summary.products:
        manifest = manifests.get(product.name)
        heading = escape(product.name)
        if manifest is not None and not absolute:
            heading = f'<a href="{escape(product.name, quote=True)}/index.html">{heading}</a>'
        verdict = {"published": "passed", "incomplete": "needs_review"}.get(product.status, "failed")
        body.append(f"<h2>{heading} {_badge(verdict, product.status)}</h2>")
        if product.error:
            body.append(f"<p>{escape(product.error)}</p>")
        if manifest is not None:
            body.append('<div class="grid">')
            body.extend(_figure(variant, absolute, prefix=f"{product.name}/") for variant in manifest.variants)
            body.append("</div>")
        failed = [v for v in product.variants if v.status != "published"]
        if failed:
            body.append("<ul>")
            body.extend(f"<li>#{v.index} {escape(v.status)}: {escape(v.error or '')}</li>" for v in failed)
            body.append("</ul>")
    return _page(title, body)


__all__ = ["GALLERY_NAME", "campaign_gallery", "run_gallery"]
