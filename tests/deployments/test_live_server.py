"""The deployments end to end: a real Prefect server, ``prefect deploy --all`` and a real process worker.

One server and one worker serve the module (see tests/live_prefect.py); flow runs are started through
the API as the dashboard's Run button does, or through the UI's own "Custom run" form in headless
Chromium (tests/browser.py), and a failed run is retried as its Retry button does. The worker runs with
``faults.fail_stage=harmonize`` while a flag file exists, so a test can make a run fail in its last stage
and then retry it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prefect.utilities.schema_tools.validation import validate

from tests import browser
from tests.browser import choose_variant, field, fill_field, form_fields, submit_run
from tests.live_prefect import POLL_S, ROOT, LivePrefect, outputs_of, read_json, tail

PLACE_PRODUCT = "place-product/place-product"
CAMPAIGN = "campaign/campaign"
# Every stage before harmonize: a retry after a harmonize failure must reuse them all.
FINISHED_STAGES = ("ingest", "enhance", "cutout", "analyze", "scene", "locate", "composite")
# How long after deploying a scheduled run may take to show (the scheduler looks at new deployments every 5 s).
SCHEDULER_WAIT_S = 30.0
SMALL_RUN = {
    "request": {
        "product": "examples/olive-oil-bottle.jpg",
        "prompts": ["sunlit marble kitchen counter", "white minimal studio"],
        "size": "512x512",
    }
}
EXAMPLE_CAMPAIGN = {"campaign_file": "examples/campaign.yaml"}


class Live:
    """The module's Prefect (server, pool, deployments, worker) and the worker's fault flag."""

    def __init__(self, prefect: LivePrefect, fault_flag: Path) -> None:
        self.prefect = prefect
        self.fault_flag = fault_flag


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    workdir = tmp_path_factory.mktemp("live-prefect")
    flag = workdir / "fail-harmonize"
    prefect = LivePrefect(
        workdir,
        worker_env={
            "PLACEWRIGHT_RETRY__RETRIES": "0",  # a failed stage fails its flow run at once
            "PLACEWRIGHT_FAULTS__FAIL_STAGE": "harmonize",
            "PLACEWRIGHT_FAULTS__WHILE_FILE_EXISTS": str(flag),
        },
    )
    with prefect:
        yield Live(prefect, flag)


def stage_of(task_run) -> str:
    """``cut-out-3fa`` -> ``cut-out``: Prefect names a task run after its task plus a short suffix."""
    return task_run.name.rsplit("-", 1)[0]


def states_by_stage(task_runs: list) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for task_run in task_runs:
        found.setdefault(stage_of(task_run), []).append(task_run.state.name)
    return found


def test_deploy_all_from_the_checkout(live: Live) -> None:
    assert live.prefect.deployment_names() == [CAMPAIGN, PLACE_PRODUCT]

    place = live.prefect.read_deployment(PLACE_PRODUCT)
    assert place.work_pool_name == "placewright"
    assert place.entrypoint == "flows/place_product.py:place_product"
    assert (ROOT / place.parameters["request"]["product"]).is_file()
    # The pull step resolved $PLACEWRIGHT_CHECKOUT at deploy time: flow runs start in this checkout.
    assert place.pull_steps == [{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}]

    campaign = live.prefect.read_deployment(CAMPAIGN)
    assert campaign.work_pool_name == "placewright"
    assert campaign.parameters == {}, "the run form starts empty: a campaign filled in there is the only one"
    assert [(s.schedule.cron, s.schedule.timezone, s.active, s.parameters) for s in campaign.schedules] == [
        ("0 6 * * 1", "UTC", True, EXAMPLE_CAMPAIGN)
    ]
    schema = campaign.parameter_openapi_schema
    assert {"campaign", "campaign_file", "refresh"} <= set(schema["properties"])
    # The campaign parameter is the pydantic model: the UI renders it as a form of products and scenes.
    assert {"CampaignSpec", "CampaignProduct", "CampaignScene"} <= set(schema["definitions"])
    assert {"name", "products", "scenes"} <= set(schema["definitions"]["CampaignSpec"]["properties"])


def test_retry_from_the_dashboard_reuses_finished_stages(live: Live) -> None:
    prefect = live.prefect
    live.fault_flag.touch()
    try:
        flow_run_id = prefect.run_deployment(PLACE_PRODUCT, SMALL_RUN)
        failed = prefect.wait_for_final_state(flow_run_id)
    finally:
        live.fault_flag.unlink(missing_ok=True)
    assert failed.state.name == "Failed", failed.state.message
    first = prefect.task_runs(flow_run_id)
    # The quality gate's tasks wait on harmonize: they never started (Prefect shows them NotReady).
    assert {t.flow_run_run_count for t in first if stage_of(t) != "check"} == {1}
    assert set(states_by_stage(first)["check"]) == {"NotReady"}
    first = [t for t in first if stage_of(t) != "check"]
    stages = states_by_stage(first)
    assert stages["harmonize"] == ["Failed", "Failed"]
    for task_run in first:
        if stage_of(task_run) == "harmonize":
            assert "injected fault in stage harmonize" in (task_run.state.message or "")
    for stage in FINISHED_STAGES:
        assert stages[stage] and set(stages[stage]) == {"Completed"}, (stage, stages)
    assert "publish" not in stages
    assert outputs_of(prefect.out_dir, flow_run_id) == []

    answer = prefect.retry_from_dashboard(flow_run_id)
    assert answer["status"] == "ACCEPT", answer
    done = prefect.wait_for_final_state(flow_run_id)
    assert done.state.name == "Completed", done.state.message
    assert done.run_count == 2

    # Prefect keeps the first attempt's task runs and records each task run's attempt of its flow run.
    retried = [t for t in prefect.task_runs(flow_run_id) if t.flow_run_run_count == 2]
    stages = states_by_stage(retried)
    for stage in FINISHED_STAGES:
        assert len(stages[stage]) == len(states_by_stage(first)[stage]), (stage, stages)
        assert set(stages[stage]) == {"Cached"}, (stage, stages)
    assert stages["harmonize"] == ["Completed", "Completed"]
    assert stages["check"] == ["Completed", "Completed"]
    assert stages["publish"] == ["Completed"]

    manifests = outputs_of(prefect.out_dir, flow_run_id)
    assert len(manifests) == 1, manifests
    manifest = read_json(manifests[0])
    assert [v["index"] for v in manifest["variants"]] == [0, 1]
    assert [v["prompt"] for v in manifest["variants"]] == SMALL_RUN["request"]["prompts"]
    for variant in manifest["variants"]:
        assert (manifests[0].parent / variant["image"]).is_file()

    # The run page shows the contact sheet, although the run went to a local folder (file:// images are
    # blocked in a browser): it is embedded in the summary artifact. Checked in the real UI, in Chromium.
    summary = next(a for a in prefect.artifacts(flow_run_id) if a.key == "place-product-run")
    ui = prefect.api_url.removesuffix("/api")
    with browser.chromium() as page:
        shown = browser.images_shown(page, f"{ui}/artifacts/artifact/{summary.id}")
    sheet = [image for image in shown if image.alt == "contact sheet"]
    assert sheet and sheet[0].natural_width > 0, shown


def campaign_outputs(live: Live, flow_run_id) -> tuple[dict, dict]:
    """The run's campaign.json, and its artifacts by key."""
    summaries = outputs_of(live.prefect.out_dir, flow_run_id, "campaign.json")
    assert len(summaries) == 1, summaries
    artifacts = {a.key: a for a in live.prefect.artifacts(flow_run_id) if a.key}
    return read_json(summaries[0]), artifacts


def assert_campaign_reported(artifacts: dict, summary: dict) -> None:
    assert artifacts["campaign-summary"].type == "markdown"
    assert f"# Campaign {summary['campaign']}: completed" in artifacts["campaign-summary"].data
    assert artifacts["campaign-variants"].type == "table"
    rows = json.loads(artifacts["campaign-variants"].data)
    assert len(rows) == summary["variants"]
    assert {row["status"] for row in rows} == {"published"}


def test_campaign_deployment_runs_the_example_with_a_summary(live: Live) -> None:
    live.fault_flag.unlink(missing_ok=True)  # harmonize fails only while it exists
    flow_run_id = live.prefect.run_deployment(CAMPAIGN, EXAMPLE_CAMPAIGN)  # what the weekly schedule runs
    done = live.prefect.wait_for_final_state(flow_run_id)
    assert done.state.name == "Completed", done.state.message
    assert done.parameters == EXAMPLE_CAMPAIGN

    summary, artifacts = campaign_outputs(live, flow_run_id)
    assert summary["campaign"] == "spring-kitchen"
    assert summary["status"] == "completed"
    assert (summary["variants"], summary["published_variants"], summary["failed_variants"]) == (6, 6, 0)
    assert [p["name"] for p in summary["products"]] == ["olive-oil-bottle", "face-cream-jar"]
    assert_campaign_reported(artifacts, summary)


def test_campaign_form_parameters_run_through_the_deployment(live: Live) -> None:
    live.fault_flag.unlink(missing_ok=True)
    campaign = {
        "name": "live-test",
        "options": {"size": "512x512", "format": "png", "seed": 3},
        "products": [
            {"path": "examples/olive-oil-bottle.jpg"},  # "name" defaults to the file stem
            {"path": "examples/olive-oil-bottle.jpg", "name": "bottle-two"},
        ],
        "scenes": [
            {"prompt": "sunlit marble kitchen counter"},
            {"prompt": "rustic wooden table"},
            {"prompt": "white minimal studio"},
        ],
    }
    flow_run_id = live.prefect.run_deployment(CAMPAIGN, {"campaign": campaign})  # as the form sends it
    done = live.prefect.wait_for_final_state(flow_run_id)
    assert done.state.name == "Completed", done.state.message

    summary, artifacts = campaign_outputs(live, flow_run_id)
    assert summary["campaign"] == "live-test"
    assert (summary["variants"], summary["published_variants"]) == (6, 6)
    assert [p["name"] for p in summary["products"]] == ["olive-oil-bottle", "bottle-two"]
    assert_campaign_reported(artifacts, summary)


def test_campaign_form_product_name_is_optional(live: Live) -> None:
    schema = live.prefect.read_deployment(CAMPAIGN).parameter_openapi_schema
    campaign = {
        "name": "live-test",
        "products": [{"path": "examples/olive-oil-bottle.jpg"}],
        "scenes": [{"prompt": "x"}],
    }
    validate({"campaign": campaign, "campaign_file": None}, schema, raise_on_error=True)  # the server's own check


def _open_form(live: Live, deployment: str, page) -> dict:
    browser.open_run_form(page, live.prefect.api_url.removesuffix("/api"), live.prefect.read_deployment(deployment).id)
    return {f.path: f for f in form_fields(page)}


def test_place_product_form_shows_choices_and_numbers_and_runs_as_filled_in(live: Live) -> None:
    live.fault_flag.unlink(missing_ok=True)
    with browser.chromium() as page:
        fields = _open_form(live, PLACE_PRODUCT, page)
        assert (fields["request.product"].kind, fields["request.product"].value) == (
            "text",
            "examples/olive-oil-bottle.jpg",
        ), "the deployment's example"
        assert fields["request.prompts"].value == [
            "sunlit marble kitchen counter, morning light",
            "rustic wooden table, warm evening light",
        ]
        for path, choices in {
            "request.format": ("webp", "jpeg", "png"),
            "request.urls": ("auto", "presigned", "public", "plain"),
        }.items():
            assert fields[path].variant == "None", "unset: the settings decide"
            choose_variant(page, path, next(v for v in fields[path].variants if v != "None"))
            shown = field(page, path)
            assert (shown.kind, shown.options) == ("select", choices), path  # a closed choice is a choice
        size = fields["request.size"]
        assert size.variants == ("Width and height", "WIDTHxHEIGHT", "None")
        choose_variant(page, "request.size", "Width and height")
        assert [field(page, f"request.size.{side}").kind for side in ("width", "height")] == ["number", "number"]
        assert "int" in fields["request.seed"].variants

        fill_field(page, "request.prompts", ["white minimal studio", "pastel pink studio"])
        fill_field(page, "request.size", {"width": 320, "height": 256})
        fill_field(page, "request.format", "png")
        fill_field(page, "request.seed", 9)
        flow_run_id = submit_run(page)
    done = live.prefect.wait_for_final_state(flow_run_id)
    assert done.state.name == "Completed", done.state.message
    (manifest_path,) = outputs_of(live.prefect.out_dir, flow_run_id)
    manifest = read_json(manifest_path)
    assert manifest["format"] == "png"
    assert [(v["prompt"], v["seed"], v["width"], v["height"]) for v in manifest["variants"]] == [
        ("white minimal studio", 9, 320, 256),
        ("pastel pink studio", 10, 320, 256),
    ]


def test_campaign_form_starts_empty_and_a_campaign_filled_in_runs(live: Live) -> None:
    live.fault_flag.unlink(missing_ok=True)
    with browser.chromium() as page:
        fields = _open_form(live, CAMPAIGN, page)
        assert [(f.path, f.kind, f.variant) for f in fields.values() if f.path in ("campaign", "campaign_file")] == [
            ("campaign", "null", "None"),
            ("campaign_file", "null", "None"),
        ], "nothing pre-filled: the trap of a default campaign_file beside a filled-in campaign is gone"
        choose_variant(page, "campaign", "CampaignSpec")
        fill_field(page, "campaign.name", "form-filled")
        browser.add_item(page, "campaign.products")
        fill_field(page, "campaign.products[0].path", "examples/face-cream-jar.jpg")
        browser.add_item(page, "campaign.scenes")
        fill_field(page, "campaign.scenes[0].prompt", "white minimal studio")
        choose_variant(page, "campaign.options.size", "WIDTHxHEIGHT")
        fill_field(page, "campaign.options.size", "384x384")
        flow_run_id = submit_run(page)
    done = live.prefect.wait_for_final_state(flow_run_id)
    assert done.state.name == "Completed", done.state.message
    assert done.parameters["campaign_file"] is None and done.parameters["campaign"]["name"] == "form-filled"
    summary, _ = campaign_outputs(live, flow_run_id)
    assert (summary["campaign"], summary["status"], summary["published_variants"]) == ("form-filled", "completed", 1)
    assert [p["name"] for p in summary["products"]] == ["face-cream-jar"]


def test_campaign_schedule_creates_monday_runs(live: Live) -> None:
    # The server's scheduler looks at new deployments every 5 s: last in the module, this test looks once.
    deadline = live.prefect.deployed_at + SCHEDULER_WAIT_S
    while not (scheduled := live.prefect.scheduled_runs(CAMPAIGN)) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    assert scheduled, f"no scheduled run of the campaign deployment; the server log:\n{tail(live.prefect.server_log)}"
    starts = [run.expected_start_time.astimezone(UTC) for run in scheduled]
    assert all((t.weekday(), t.hour, t.minute) == (0, 6, 0) for t in starts), starts
    assert all(run.parameters == EXAMPLE_CAMPAIGN for run in scheduled), "the schedule's own parameters"
    assert min(starts) > datetime.now(UTC)
