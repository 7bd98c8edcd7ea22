"""The flows store their parameters as Prefect does, without importing FastAPI (flows/contract_flow.py)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prefect import Flow

from flows.campaign import run_campaign
from flows.contract_flow import ContractFlow
from flows.place_product import place_product
from placewright.campaign import CampaignSpec
from placewright.request import RunRequest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _request() -> RunRequest:
    return RunRequest(
        product=str(EXAMPLES / "olive-oil-bottle.jpg"),
        prompts=["marble counter", "oak table"],
        backgrounds=[str(EXAMPLES / "olive-oil-bottle.jpg")],
        surface="counter",
        size="768x512",
        seed=7,
        format="png",
        urls="presigned",
        out="s3://bucket/runs",
    )


def _campaign() -> CampaignSpec:
    return CampaignSpec.model_validate(
        {
            "name": "spring",
            "options": {"size": "512x512", "seed": 3},
            "products": [{"path": str(EXAMPLES / "olive-oil-bottle.jpg"), "name": "oil", "surface": "shelf"}],
            "scenes": [{"prompt": "marble counter"}, {"prompt": "oak table"}],
        }
    )


def test_the_flows_are_contract_flows() -> None:
    assert isinstance(place_product, ContractFlow) and isinstance(place_product, Flow)
    assert isinstance(run_campaign, ContractFlow)
    assert (place_product.name, run_campaign.name) == ("place-product", "campaign")


@pytest.mark.parametrize(
    ("flow", "parameters"),
    [
        (place_product, lambda: {"request": _request(), "refresh": True}),
        (run_campaign, lambda: {"campaign": _campaign(), "campaign_file": None, "refresh": False}),
        (run_campaign, lambda: {"campaign": None, "campaign_file": "campaign.yaml", "refresh": False}),
        # not ours to encode: Prefect's serializer takes over
        (place_product, lambda: {"request": _request(), "when": datetime(2026, 12, 1, tzinfo=UTC), "path": Path("/x")}),
    ],
    ids=["run request", "campaign", "campaign file", "other kinds"],
)
def test_parameters_are_stored_as_prefect_stores_them(flow: ContractFlow, parameters) -> None:
    values = parameters()
    ours = flow.serialize_parameters(values)
    assert ours == Flow.serialize_parameters(flow, values)
    if "request" in values:
        assert ours["request"]["size"] == {"width": 768, "height": 512} and ours["request"]["seed"] == 7


def test_storing_parameters_does_not_import_fastapi() -> None:
    probe = (
        "import sys\n"
        "from flows.place_product import place_product\n"
        "from placewright.request import RunRequest\n"
        f"request = RunRequest(product={str(EXAMPLES / 'olive-oil-bottle.jpg')!r}, prompts=['a'], out='/tmp/o')\n"
        "place_product.serialize_parameters({'request': request, 'refresh': False})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'fastapi'))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
