"""The campaign flow: products x scenes, one summary, and the rule for its final state."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from flows.campaign import CampaignIncomplete, run_campaign
from placewright.campaign import load_campaign
from placewright.errors import InvalidInput
from tests.synth import make_product_photo

pytestmark = pytest.mark.usefixtures("prefect_server")


def _write_campaign(folder: Path, products: list[dict], **extra) -> Path:
    document = {
        "name": "spring-test",
        "out": "out",
        "options": {"size": "512x512", "seed": 5},
        "products": products,
        "scenes": [
            {"prompt": "sunlit marble counter"},
            {"prompt": "rustic wooden table"},
            {"prompt": "pastel pink studio"},
        ],
        **extra,
    }
    path = folder / "campaign.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _products(folder: Path) -> list[dict]:
    bottle, _ = make_product_photo("bottle", product_rgb=(40, 110, 60), size=(360, 480), seed=1)
    box, _ = make_product_photo("box", product_rgb=(200, 60, 40), size=(480, 360), seed=2)
    Image.fromarray(bottle).save(folder / "green-bottle.png")
    Image.fromarray(box).save(folder / "red-box.png")
    return [{"path": "green-bottle.png"}, {"path": "red-box.png", "surface": "shelf"}]


def test_two_products_three_scenes(tmp_path: Path) -> None:
    path = _write_campaign(tmp_path, _products(tmp_path))
    state = run_campaign(campaign_file=str(path), return_state=True)
    assert state.is_completed()
    summary = state.result().model_dump(mode="json")
    run_dir = tmp_path / "out" / "spring-test" / summary["run_id"]
    assert json.loads((run_dir / "campaign.json").read_text()) == summary
    assert summary["status"] == "completed" and summary["variants"] == summary["published_variants"] == 6
    assert [p["name"] for p in summary["products"]] == ["green-bottle", "red-box"]
    for product in summary["products"]:
        manifest = json.loads((run_dir / product["name"] / "manifest.json").read_text())
        assert manifest["product"]["source"].endswith(f"{product['name']}.png")
        assert [v["prompt"] for v in manifest["variants"]] == [
            "sunlit marble counter",
            "rustic wooden table",
            "pastel pink studio",
        ]
        assert [v["seed"] for v in manifest["variants"]] == [5, 6, 7]
        for variant in manifest["variants"]:
            assert Image.open(run_dir / product["name"] / variant["image"]).size == (512, 512)
    images = [np.asarray(Image.open(run_dir / p["name"] / p["variants"][0]["image"])) for p in summary["products"]]
    assert np.abs(images[0].astype(int) - images[1]).mean() > 3, "each product is placed in its own image"


def test_a_broken_product_image_does_not_sink_the_campaign(tmp_path: Path) -> None:
    products = _products(tmp_path)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    path = _write_campaign(tmp_path, [products[0], {"path": "broken.jpg"}])
    state = run_campaign(campaign_file=str(path), return_state=True)
    assert state.is_failed(), "the rule: Completed only when every variant was published"
    with pytest.raises(CampaignIncomplete, match=r"3 of 6 variant\(s\) published; failed: broken \(product image"):
        state.result()
    run_dir = next((tmp_path / "out" / "spring-test").iterdir())
    summary = json.loads((run_dir / "campaign.json").read_text())
    assert summary["status"] == "incomplete" and summary["failed_variants"] == 3
    good, broken = summary["products"]
    assert good["status"] == "published" and (run_dir / "green-bottle" / "manifest.json").is_file()
    assert broken["status"] == "failed" and "broken.jpg" in broken["error"]
    assert all(v["status"] == "failed" and v["error"] == broken["error"] for v in broken["variants"])
    assert not (run_dir / "broken").exists()


def test_a_failed_variant_is_listed_and_the_rest_published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tasks.composite

    real = tasks.composite.composite

    def fail_on_pink(*args, **kwargs):
        if kwargs.get("seed") == 7:  # the third scene of every product
            raise RuntimeError("composite exploded on purpose")
        return real(*args, **kwargs)

    monkeypatch.setattr(tasks.composite, "composite", fail_on_pink)
    path = _write_campaign(tmp_path, _products(tmp_path))
    state = run_campaign(campaign_file=str(path), return_state=True)
    assert state.is_failed()
    run_dir = next((tmp_path / "out" / "spring-test").iterdir())
    summary = json.loads((run_dir / "campaign.json").read_text())
    assert summary["published_variants"] == 4 and summary["failed_variants"] == 2
    for product in summary["products"]:
        assert product["status"] == "incomplete"
        assert [v["status"] for v in product["variants"]] == ["published", "published", "failed"]
        assert product["variants"][2]["error"] == "composite: composite exploded on purpose"
        manifest = json.loads((run_dir / product["name"] / "manifest.json").read_text())
        assert [v["index"] for v in manifest["variants"]] == [0, 1]


def test_campaign_as_a_parameter_and_bad_parameters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write_campaign(tmp_path, _products(tmp_path)[:1], scenes=[{"prompt": "white studio", "variants": 2}])
    spec = load_campaign(path)
    summary = run_campaign(campaign=spec)
    assert summary.variants == 2 and summary.status == "completed"
    for bad in ({}, {"campaign": spec, "campaign_file": str(path)}):
        state = run_campaign(**bad, return_state=True)
        with pytest.raises(InvalidInput, match="give either campaign or campaign_file"):
            state.result()
