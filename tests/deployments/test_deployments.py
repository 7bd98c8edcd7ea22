from __future__ import annotations

from pathlib import Path

import yaml
from prefect.utilities.callables import parameter_schema

from deployments.local import DEPLOYMENT_NAME, build
from flows.place_product import place_product

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
    for deployment in config["deployments"]:
        path, _, name = deployment["entrypoint"].partition(":")
        assert (ROOT / path).is_file()
        assert f"def {name}(" in (ROOT / path).read_text()
        assert (ROOT / deployment["parameters"]["product"]).is_file()
