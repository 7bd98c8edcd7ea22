"""Pictures people look at: each run's and campaign's contact sheet and ``index.html`` gallery, opened in Chromium.

The galleries are opened in headless Chromium (Debian's, driven by playwright) from where they were
published: a local folder (``file://``, relative links) and a bucket reached through presigned URLs
(moto's S3 server). Every image on the page must have loaded (``naturalWidth > 0``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from flows.campaign import run_campaign
from tests import browser
from tests.flows.runs import place
from tests.s3 import MotoS3

pytestmark = pytest.mark.usefixtures("prefect_server")
ROOT = Path(__file__).resolve().parents[2]


def _all_loaded(images: list[browser.ShownImage]) -> None:
    broken = [image.src[:120] for image in images if image.natural_width <= 0]
    assert not broken, f"images that did not load: {broken}"


def test_a_run_publishes_a_contact_sheet_and_a_gallery_that_loads_from_its_folder(
    example_product: Path, tmp_path: Path
) -> None:
    manifest = place(
        example_product, prompts=["sunlit marble counter", "rustic wooden table"], size="640x480", out=str(tmp_path)
    )
    run = Path(manifest["location"])
    sheet = np.asarray(Image.open(run / manifest["contact_sheet"]).convert("RGB"))
    assert sheet.shape[1] >= 2 * 300  # two tiles, side by side
    assert manifest["gallery"] == "index.html" and manifest["gallery_url"].startswith("file://")
    html = (run / "index.html").read_text()
    assert "file://" not in html, "links are relative: the folder can move"
    moved = tmp_path / "moved"
    shutil.copytree(run, moved)  # a copied folder (or a bucket website) works the same
    with browser.chromium() as page:
        images = browser.images_shown(page, (moved / "index.html").as_uri(), at_least=3)
    _all_loaded(images)
    shown = {Path(image.src).name for image in images}
    assert manifest["contact_sheet"] in shown
    assert {v["preview"] for v in manifest["variants"]} <= shown


def test_the_example_campaign_publishes_a_contact_sheet_and_galleries(tmp_path: Path) -> None:
    campaign = tmp_path / "campaign"
    shutil.copytree(ROOT / "examples", campaign)
    summary = run_campaign(campaign_file=str(campaign / "campaign.yaml"))
    folder = Path(summary.location)
    assert (folder / summary.contact_sheet).is_file() and (folder / "index.html").is_file()
    sheet = Image.open(folder / summary.contact_sheet)
    assert sheet.width >= 3 * 300  # six variants: rows of tiles
    with browser.chromium() as page:
        images = browser.images_shown(page, (folder / "index.html").as_uri(), at_least=1 + summary.variants)
        _all_loaded(images)
        for product in summary.products:
            _all_loaded(browser.images_shown(page, (folder / product.name / "index.html").as_uri(), at_least=3))


def test_a_gallery_on_a_presigned_bucket_loads_in_the_browser(
    s3: MotoS3, example_product: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3.new_bucket()
    manifest = place(
        example_product, prompts=["marble counter", "wooden table"], size="512x512", out=f"s3://{bucket}/ads"
    )
    assert manifest["gallery_url"].startswith("http") and "Signature" in manifest["gallery_url"]
    with browser.chromium() as page:
        images = browser.images_shown(page, manifest["gallery_url"], at_least=3)
    _all_loaded(images)
    assert len(images) == 3
