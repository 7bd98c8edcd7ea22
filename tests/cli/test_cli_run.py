"""The CLI end to end, as a user runs it: a real process with its own local Prefect server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.s3 import CREDENTIALS, MotoS3

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("cli-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PLACEWRIGHT_"))}
    env.update(
        PYTHONPATH=str(ROOT),
        PREFECT_HOME=str(home / "prefect"),
        PLACEWRIGHT_CACHE_DIR=str(home / "cache"),
        PLACEWRIGHT_MODELS_DIR=str(home / "models"),  # none: the embedded classical backends
        PLACEWRIGHT_CLI_TIMINGS="1",
    )
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "placewright.cli", "run", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def test_json_then_plain_run_reuses_the_cache(cli_env: dict, example_product: Path, tmp_path: Path) -> None:
    args = [str(example_product), "-p", "marble counter", "-p", "wooden table", "--size", "512x384", "--out", "out"]
    first = _run([*args, "--json"], cli_env, tmp_path)
    assert first.returncode == 0, first.stderr
    manifest = json.loads(first.stdout)  # stdout holds the manifest and nothing else
    run_dir = tmp_path / "out" / manifest["run_id"]
    assert json.loads((run_dir / "manifest.json").read_text()) == manifest
    assert len(manifest["variants"]) == 2
    for variant in manifest["variants"]:
        assert Image.open(run_dir / variant["image"]).size == (512, 384)

    second = _run(args, cli_env, tmp_path)
    assert second.returncode == 0, second.stderr
    printed = second.stdout.strip()
    assert printed.startswith("out/") and len(printed.splitlines()) == 1
    again = json.loads((tmp_path / printed / "manifest.json").read_text())
    assert again["run_id"] != manifest["run_id"]
    # Cached stage results come back as they were stored, timings included: no stage ran again.
    for before, after in zip(manifest["variants"], again["variants"], strict=True):
        assert before["stages"] == after["stages"]
    timings = json.loads(second.stderr.strip().splitlines()[-1])["cli_timings"]
    assert timings["input_checked"] < timings["server_ready"] < timings["flow_finished"] <= timings["exit"]


def test_png_output_to_a_new_folder(cli_env: dict, tmp_path: Path) -> None:
    product = tmp_path / "red_box.png"
    image = Image.new("RGB", (300, 240), (235, 235, 235))
    image.paste((200, 30, 30), (90, 50, 210, 200))
    image.save(product)
    result = _run([str(product), "--format", "png", "--out", str(tmp_path / "new" / "folder")], cli_env, tmp_path)
    assert result.returncode == 0, result.stderr
    run_dir = Path(result.stdout.strip())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    variant = manifest["variants"][0]
    files = sorted(p.name for p in run_dir.iterdir())
    assert files == sorted(
        ["manifest.json", "product", variant["image"], variant["preview"], "contact-sheet.png", "index.html"]
    )
    assert variant["image"].endswith(".png") and variant["preview"].endswith(".preview.png")
    assert Image.open(run_dir / variant["preview"]).size == (512, 512)
    assert manifest["variants"][0]["product_fidelity"] == 0, "lossless output keeps every product pixel"
    assert not [p for p in run_dir.parent.iterdir() if p.name.startswith(".")], "no partial folders left"


def test_publish_to_s3_with_only_the_aws_environment(
    cli_env: dict, example_product: Path, tmp_path: Path, s3: MotoS3
) -> None:
    """`--out s3://bucket/prefix` works with nothing but the standard AWS variables set."""
    bucket = s3.new_bucket()
    env = {**cli_env, **CREDENTIALS, "AWS_ENDPOINT_URL": s3.endpoint}
    result = _run([str(example_product), "-p", "marble counter", "--out", f"s3://{bucket}/ads"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    location = result.stdout.strip()
    assert location.startswith(f"s3://{bucket}/ads/") and "\n" not in location
    prefix = location.removeprefix(f"s3://{bucket}/")
    manifest = json.loads(s3.client().get_object(Bucket=bucket, Key=f"{prefix}/manifest.json")["Body"].read())
    assert manifest["location"] == location
    assert set(s3.objects(bucket, prefix)) >= {f"{prefix}/{manifest['variants'][0]['image']}"}

    env.pop("PLACEWRIGHT_CLI_TIMINGS")
    missing = _run([str(example_product), "--out", "s3://no-such-bucket/ads"], env, tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        "placewright: error: s3://no-such-bucket/ads: bucket 'no-such-bucket' does not exist "
        "(or these credentials cannot see it)"
    )


def test_two_identical_runs_publish_byte_identical_files(cli_env: dict, example_product: Path, tmp_path: Path) -> None:
    """Two processes, every stage computed in each (--refresh): the same bytes, embedded sRGB profile included."""
    runs = []
    for out in ("first", "second"):
        result = _run(
            [str(example_product), "-p", "marble counter", "--size", "640x640", "--refresh", "--out", out],
            cli_env,
            tmp_path,
        )
        assert result.returncode == 0, result.stderr
        runs.append(tmp_path / result.stdout.strip())
    files = sorted(
        p.relative_to(runs[0])
        for p in runs[0].rglob("*")
        if p.suffix in (".webp", ".png") and not p.name.startswith("contact-sheet")  # the sheet names its run
    )
    assert len(files) == 3, files  # the image, its preview and the cut-out
    for name in files:
        assert (runs[0] / name).read_bytes() == (runs[1] / name).read_bytes(), name


def test_a_product_refused_by_a_product_stage_exits_2_with_the_stage_message(cli_env: dict, tmp_path: Path) -> None:
    product = tmp_path / "ghost.png"
    rgba = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    rgba.paste((200, 40, 40, 255), (100, 100, 102, 102))  # 4 visible pixels: the decoder accepts it, the cut-out not
    rgba.save(product)
    result = _run([str(product), "--out", str(tmp_path / "out")], cli_env, tmp_path)
    assert result.returncode == 2, result.stderr
    (line,) = [x for x in result.stderr.splitlines() if not x.startswith("{")]  # the timings line aside
    assert line.startswith("placewright: error: the product image is almost fully transparent: only 0.01% of it"), line
    assert not (tmp_path / "out").exists()


def test_a_failed_product_stage_exits_1_with_its_own_message(
    cli_env: dict, example_product: Path, tmp_path: Path
) -> None:
    env = {**cli_env, "PLACEWRIGHT_FAULTS__FAIL_STAGE": "enhance", "PLACEWRIGHT_RETRY__RETRIES": "0"}
    result = _run([str(example_product), "--refresh", "--out", str(tmp_path / "out")], env, tmp_path)
    assert result.returncode == 1, result.stderr
    (line,) = [x for x in result.stderr.splitlines() if not x.startswith("{")]
    assert line.startswith("placewright: error: injected fault in stage enhance"), line


def test_a_variant_that_fails_the_quality_gate_is_published_with_a_warning(
    cli_env: dict, example_product: Path, tmp_path: Path
) -> None:
    env = {**cli_env, "PLACEWRIGHT_QUALITY__SHADOW_MIN_DARKENING": "0.9"}  # no shadow is that dark
    result = _run([str(example_product), "-p", "marble counter", "--size", "512x384", "--out", "out"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("placewright: warning:")]
    assert len(warnings) == 1 and warnings[0].startswith("placewright: warning: variant 0 needs review: shadow: ")
    manifest = json.loads((tmp_path / result.stdout.strip() / "manifest.json").read_text())
    variant = manifest["variants"][0]
    assert variant["verdict"] == "needs_review" and variant["attempts"] == 2 and variant["seed"] == 1


def test_the_cli_process_leaves_its_objects_out_of_the_collections_at_exit() -> None:
    """An in-process caller of the CLI's module: the interpreter ends the process, its collections sparing the heap."""
    code = (
        "import atexit, gc, placewright.cli\n"
        "before = gc.get_freeze_count()\n"
        "atexit._run_exitfuncs()\n"
        "print(before, gc.get_freeze_count())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    before, after = map(int, done.stdout.split())
    assert before == 0
    assert after > 1000  # the modules, classes and functions of the imports


def test_the_cli_ends_without_the_interpreters_teardown_keeping_its_output_and_status(tmp_path: Path) -> None:
    """main() ends the process in its last exit hook: every line printed and logged arrives, the status is kept,
    and the exit hooks registered before it (here: one that stands for the interpreter's teardown) never run."""
    log = tmp_path / "cli.log"
    code = (
        "import atexit, logging, sys\n"
        "atexit.register(print, 'TEARDOWN', file=sys.stderr)\n"
        "from placewright.cli import main\n"
        f"handler = logging.FileHandler({str(log)!r})\n"
        "logging.getLogger('placewright.test').addHandler(handler)\n"
        "logging.getLogger('placewright.test').warning('logged before exit')\n"
        "sys.stdout.write('x' * 100000)\n"  # buffered: must be flushed
        "sys.argv = ['placewright', *sys.argv[1:]]\n"
        "main()\n"
    )
    for args, status in ((["--help"], 0), (["run"], 2), (["no-such-command"], 2)):
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == status, done.stderr
        assert done.stdout.startswith("x" * 100000)
        assert "TEARDOWN" not in done.stderr
        assert "Traceback" not in done.stderr
        if status == 0:
            assert "Place a product photo" in done.stdout
        else:
            assert done.stderr.startswith("placewright: error: ")
        assert log.read_text() == "logged before exit\n"  # flushed and closed by logging's shutdown
        log.unlink()
