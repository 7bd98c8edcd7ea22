"""Products and backgrounds from URLs through the flows, and runs from outside kept inside the access roots.

A "run from outside" here is a real flow run of a deployment: the deployment is registered with the
test server, ``run_deployment`` creates its flow run, and the flow runs in this process the way a
worker's subprocess runs it (``run_flow`` with that flow run), so the flow sees the run's deployment.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image
from prefect import Flow, flow
from prefect.deployments import run_deployment
from prefect.flow_engine import run_flow
from prefect.states import State

from flows.campaign import _campaign as _spec
from flows.campaign import run_campaign
from flows.place_product import arrived_from_outside, place_product
from placewright.access import UNRESTRICTED, Access
from placewright.campaign import parse_campaign
from placewright.errors import InvalidInput
from placewright.settings import get_settings
from tests.flows.runs import place
from tests.s3 import MotoS3

pytestmark = pytest.mark.usefixtures("prefect_server")

DEPLOYMENT = "remote-inputs-test"


def run_as_deployment(target: Flow, parameters: dict[str, Any]) -> State:
    """Run ``target`` as a flow run of a deployment of it, with JSON ``parameters`` (as the UI sends them)."""
    target.to_deployment(name=DEPLOYMENT).apply()
    flow_run = run_deployment(f"{target.name}/{DEPLOYMENT}", parameters=parameters, timeout=0)
    assert flow_run.deployment_id is not None
    return run_flow(target, flow_run=flow_run, parameters=flow_run.parameters, return_type="state")


def refusal(state: State) -> str:
    assert state.is_failed(), state
    with pytest.raises(InvalidInput) as caught:
        state.result()
    message = str(caught.value)
    assert "\n" not in message
    return message


def nothing_written(tmp_path: Path, stage_calls: dict[str, int]) -> None:
    assert not (tmp_path / "out").exists(), "nothing was published"
    assert not any(stage_calls.values()), f"no stage ran: {stage_calls}"


@pytest.fixture
def product(example_product: Path, tmp_path: Path) -> str:
    """The example product, copied into the working directory (the default input root)."""
    shutil.copy(example_product, tmp_path / "bottle.jpg")
    return "bottle.jpg"


# --- telling a run from outside from a local one ----------------------------------------------------------------------


@flow(name="probe-outside")
def probe() -> bool:
    return arrived_from_outside()


@flow(name="probe-outside-parent")
def probe_parent() -> bool:
    return probe()


def test_a_deployment_run_and_its_subflows_arrive_from_outside() -> None:
    assert probe() is False and probe_parent() is False, "called here: the local user's run"
    assert run_as_deployment(probe, {}).result() is True
    assert run_as_deployment(probe_parent, {}).result() is True, "a flow called by a deployment's run"


# --- place-product ------------------------------------------------------------------------------------------------


def test_a_deployment_run_may_not_read_outside_the_input_roots(tmp_path: Path, stage_calls: dict[str, int]) -> None:
    state = run_as_deployment(place_product, {"request": {"product": "../../etc/passwd", "prompts": ["a table"]}})
    assert refusal(state) == "product ../../etc/passwd is outside access.input_roots (['.'])"
    state = run_as_deployment(place_product, {"request": {"product": "/etc/hostname", "prompts": ["a table"]}})
    assert refusal(state) == "product /etc/hostname is outside access.input_roots (['.'])"
    nothing_written(tmp_path, stage_calls)


def test_a_deployment_run_may_not_publish_outside_the_output_roots(
    product: str, tmp_path: Path, stage_calls: dict[str, int]
) -> None:
    elsewhere = tmp_path / "elsewhere"
    state = run_as_deployment(place_product, {"request": {"product": product, "out": str(elsewhere)}})
    assert refusal(state) == (f"out {elsewhere} is outside access.output_roots ([]) and out_dir ('{tmp_path / 'out'}')")
    state = run_as_deployment(place_product, {"request": {"product": product, "backgrounds": ["s3://b/x.jpg"]}})
    assert refusal(state) == "background s3://b/x.jpg is outside access.input_roots (['.'])"
    nothing_written(tmp_path, stage_calls)
    assert not elsewhere.exists()


def test_a_deployment_run_inside_the_roots_is_placed(product: str, tmp_path: Path) -> None:
    state = run_as_deployment(
        place_product, {"request": {"product": product, "prompts": ["a table"], "size": "320x320"}}
    )
    assert state.is_completed(), state.message
    manifest = state.result()
    assert manifest.product.source == product and manifest.location.startswith(str(tmp_path / "out"))


# --- campaign -----------------------------------------------------------------------------------------------------


def _campaign(**changes: Any) -> dict[str, Any]:
    return {"name": "c", "products": [{"path": "bottle.jpg"}], "scenes": [{"prompt": "a table"}], **changes}


@pytest.mark.usefixtures("product")
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"products": [{"path": "bottle.jpg"}, {"path": "../../etc/hosts", "name": "x"}]},
            "campaign: products[1].path: ../../etc/hosts is outside access.input_roots (['.'])",
        ),
        (
            {"scenes": [{"background": "/etc/hosts"}]},
            "campaign: scenes[0].background: /etc/hosts is outside access.input_roots (['.'])",
        ),
        (
            {"out": "/tmp/campaigns"},
            "campaign: out: /tmp/campaigns is outside access.output_roots ([]) and out_dir ('{out}')",
        ),
    ],
)
def test_a_campaign_from_outside_is_held_to_the_roots(
    tmp_path: Path, stage_calls: dict[str, int], changes: dict, message: str
) -> None:
    state = run_as_deployment(run_campaign, {"campaign": _campaign(**changes)})  # as the form sends it
    assert refusal(state) == message.format(out=tmp_path / "out")
    (tmp_path / "campaign.yaml").write_text(yaml.safe_dump(_campaign(**changes)))
    state = run_as_deployment(run_campaign, {"campaign_file": "campaign.yaml"})
    assert refusal(state) == message.format(out=tmp_path / "out").replace("campaign:", "campaign.yaml:", 1)
    nothing_written(tmp_path, stage_calls)


def test_a_campaign_file_from_outside_must_be_inside_the_roots(tmp_path: Path, stage_calls: dict[str, int]) -> None:
    state = run_as_deployment(run_campaign, {"campaign_file": "/etc/hosts"})
    assert refusal(state) == "/etc/hosts: campaign file is outside access.input_roots (['.'])"
    nothing_written(tmp_path, stage_calls)


def test_a_campaign_model_from_outside_is_checked_again(product: str, tmp_path: Path) -> None:
    """A CampaignSpec passed as it is (a subflow call) is checked against the roots like a form's campaign."""
    (tmp_path.parent / "elsewhere.png").write_bytes((tmp_path / product).read_bytes())
    spec = parse_campaign(
        _campaign(products=[{"path": "../elsewhere.png"}], options={"size": "320x320"}), base_dir=tmp_path, source="c"
    )
    assert _spec(spec, None, UNRESTRICTED) is spec, "a local run takes it as it is"
    with pytest.raises(InvalidInput) as caught:
        _spec(spec, None, Access.remote(get_settings()))
    assert str(caught.value) == (
        f"campaign: products[0].path: {tmp_path.parent / 'elsewhere.png'} is outside access.input_roots (['.'])"
    )
    inside = parse_campaign(_campaign(options={"size": "320x320"}), base_dir=tmp_path, source="c")
    assert _spec(inside, None, Access.remote(get_settings())) == inside


def test_the_roots_come_from_the_settings(
    product: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage_calls: dict[str, int]
) -> None:
    monkeypatch.setenv("PLACEWRIGHT_ACCESS__INPUT_ROOTS", '["images"]')
    get_settings.cache_clear()
    state = run_as_deployment(run_campaign, {"campaign": _campaign()})
    assert refusal(state) == "campaign: products[0].path: bottle.jpg is outside access.input_roots (['images'])"
    nothing_written(tmp_path, stage_calls)


# --- products and backgrounds from URLs ---------------------------------------------------------------------------


def test_a_product_and_a_background_on_s3_are_placed(
    s3: MotoS3, example_product: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3.new_bucket("inputs")
    client = s3.client()
    client.put_object(Bucket=bucket, Key="products/bottle.jpg", Body=example_product.read_bytes())
    background = tmp_path / "cafe.png"
    Image.new("RGB", (400, 300), (150, 120, 90)).save(background)
    client.put_object(Bucket=bucket, Key="backgrounds/cafe.png", Body=background.read_bytes())
    product_url, background_url = f"s3://{bucket}/products/bottle.jpg", f"s3://{bucket}/backgrounds/cafe.png"
    fields = {"product": product_url, "backgrounds": [background_url], "prompts": ["a table"], "size": "320x320"}

    manifest = place(**fields)  # a local run (the CLI's way): anywhere
    assert manifest["product"]["source"] == product_url, "the manifest names the product as given"
    assert [v["background"] for v in manifest["variants"]] == [None, background_url]
    assert all((Path(manifest["location"]) / v["image"]).is_file() for v in manifest["variants"])

    state = run_as_deployment(place_product, {"request": fields})  # from outside: the bucket is no input root
    assert refusal(state) == f"product {product_url} is outside access.input_roots (['.'])"
    monkeypatch.setenv(
        "PLACEWRIGHT_ACCESS__INPUT_ROOTS", f'[".", "s3://{bucket}/products", "s3://{bucket}/backgrounds"]'
    )
    get_settings.cache_clear()
    state = run_as_deployment(place_product, {"request": fields})
    assert state.is_completed(), state.message
    assert [v.background for v in state.result().variants] == [None, background_url]
