from __future__ import annotations

from pathlib import Path

import yaml
from prefect.utilities.callables import parameter_schema

from deployments.local import DEPLOYMENT_NAME, build, build_campaign
from flows.campaign import run_campaign
from flows.place_product import place_product
from placewright.campaign import load_campaign

ROOT = Path(__file__).resolve().parents[2]


def test_local_deployment_runs_the_example() -> None:
    deployment = build()
    assert deployment.name == DEPLOYMENT_NAME
    assert deployment.parameters["product"] == "examples/olive-oil-bottle.jpg"
    assert (ROOT / deployment.parameters["product"]).is_file()
    assert len(deployment.parameters["prompts"]) == 2
    schema = parameter_schema(place_product).model_dump()  # what the UI renders as the run form
    assert {"product", "prompts", "backgrounds", "size", "format"} <= set(schema["properties"])
    assert schema["required"] == ["product"]


def test_prefect_yaml_entrypoints_exist() -> None:
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in config["deployments"]}
    assert set(deployments) == {"place-product", "campaign"}
    for deployment in config["deployments"]:
        path, _, name = deployment["entrypoint"].partition(":")
        assert (ROOT / path).is_file()
        assert f"def {name}(" in (ROOT / path).read_text()
    assert (ROOT / deployments["place-product"]["parameters"]["product"]).is_file()
    assert (ROOT / deployments["campaign"]["parameters"]["campaign_file"]).is_file()
    assert deployments["campaign"]["schedules"][0]["cron"] == "0 6 * * 1"


def test_the_bundled_campaign_is_valid_and_two_by_three() -> None:
    spec = load_campaign(ROOT / "examples" / "campaign.yaml")
    assert len(spec.products) == 2 and len(spec.scenes) == 3 and spec.variant_count == 6


def test_campaign_parameters_render_as_a_form() -> None:
    schema = parameter_schema(run_campaign).model_dump()
    assert {"campaign", "campaign_file", "refresh"} <= set(schema["properties"])
    form = schema["definitions"]["CampaignSpec"]["properties"]
    assert {"name", "out", "options", "variants_per_scene", "products", "scenes"} <= set(form)
    assert {"prompt", "background", "variants"} <= set(schema["definitions"]["CampaignScene"]["properties"])


def test_local_campaign_deployment() -> None:
    deployment = build_campaign()
    assert deployment.name == "campaign-local"
    assert deployment.parameters == {"campaign_file": "examples/campaign.yaml"}
