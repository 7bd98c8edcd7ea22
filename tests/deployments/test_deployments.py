from __future__ import annotations

from pathlib import Path

import yaml
from prefect.utilities.callables import parameter_schema

from deployments.local import DEPLOYMENT_NAME, build, build_campaign
from flows.campaign import run_campaign
from flows.place_product import place_product
from placewright.campaign import load_campaign
from placewright.request import RunRequest

ROOT = Path(__file__).resolve().parents[2]


def test_local_deployment_runs_the_example() -> None:
    deployment = build()
    assert deployment.name == DEPLOYMENT_NAME
    request = RunRequest.model_validate(deployment.parameters["request"])  # the defaults are a valid request
    assert (ROOT / request.product).is_file() and len(request.prompts) == 2
    schema = parameter_schema(place_product).model_dump()  # what the UI renders as the run form
    assert set(schema["properties"]) == {"request", "refresh"} and schema["required"] == ["request"]
    form = schema["definitions"]["RunRequest"]
    assert {"product", "prompts", "backgrounds", "surface", "size", "seed", "format", "urls", "out"} == set(
        form["properties"]
    )
    assert form["required"] == ["product"]


def test_prefect_yaml_entrypoints_exist() -> None:
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in config["deployments"]}
    assert set(deployments) == {"place-product", "campaign"}
    for deployment in config["deployments"]:
        path, _, name = deployment["entrypoint"].partition(":")
        assert (ROOT / path).is_file()
        assert f"def {name}(" in (ROOT / path).read_text()
    request = RunRequest.model_validate(deployments["place-product"]["parameters"]["request"])
    assert (ROOT / request.product).is_file()
    assert "parameters" not in deployments["campaign"], "the campaign form starts empty: no trap"
    (schedule,) = deployments["campaign"]["schedules"]
    assert schedule["cron"] == "0 6 * * 1"
    # The server does not check a schedule's parameters against the flow: this test does.
    assert load_campaign(ROOT / schedule["parameters"]["campaign_file"]).variant_count == 6


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
    assert deployment.parameters == {}, "the form starts empty"
