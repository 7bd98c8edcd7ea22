"""The u2net cut-out backend on the REAL u2netp model (pulled once by tests/real_models.py).

Ground truth: the bundled example's bottle is drawn by ``examples/make_product.py``, whose mask
function is reused here; the synthetic studio shots come with their masks (tests/synth.py).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from placewright.cutout import CUTTERS, cut_out
from placewright.cutout.u2net_onnx import U2netCutter, predict
from placewright.models import MODELS
from placewright.settings import CutoutSettings, ModelSpec
from tests.real_models import pulled
from tests.synth import iou, render_product_photo

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "olive-oil-bottle.jpg"
MIN_IOU = 0.97


@pytest.fixture(scope="module")
def models_dir() -> Path:
    return pulled("u2netp")


def options(models_dir: Path, **fields: object) -> CutoutSettings:
    spec = ModelSpec(model="u2netp", models_dir=models_dir, device="cpu")
    return CutoutSettings(u2net=spec, rembg=spec.model_copy(update={"model": "u2net"}), **fields)


@pytest.fixture(scope="module")
def example() -> tuple[np.ndarray, np.ndarray]:
    """The example photo and its true mask (from the script that drew it)."""
    spec = importlib.util.spec_from_file_location("make_product", ROOT / "examples" / "make_product.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rgb = np.asarray(Image.open(EXAMPLE).convert("RGB"))
    mask = np.asarray(module._bottle_mask(module.WIDTH, module.HEIGHT)) >= 128
    assert mask.shape == rgb.shape[:2]
    return rgb, mask


def test_example_bottle_through_the_default_chain(models_dir: Path, example: tuple[np.ndarray, np.ndarray]) -> None:
    rgb, truth = example
    opts = options(models_dir)
    assert CUTTERS.preference == ("rembg", "u2net", "sam", "grabcut")
    result = cut_out(rgb, options=opts)
    assert result.record.backend == "u2net" and result.record.error is None
    assert any(s.startswith("rembg: ") for s in result.record.skipped), "rembg's own model (u2net) is not there"
    alpha = np.zeros(truth.shape, np.uint8)
    box = result.box
    alpha[box.y0 : box.y1, box.x0 : box.x1] = result.rgba[..., 3]
    assert iou(alpha >= 128, truth) >= MIN_IOU
    # The contact shadow below the bottle is backdrop: no visible product under the bottle's base.
    assert np.nonzero((alpha >= 128).any(axis=1))[0][-1] <= np.nonzero(truth.any(axis=1))[0][-1] + 2


@pytest.mark.parametrize(
    ("shape", "backdrop", "colour"),
    [
        ("bottle", "gradient", (40, 90, 160)),  # blue bottle, lit sweep, cast shadow
        ("jar", "texture", (200, 40, 40)),  # red jar on paper-like grain
        ("box", "plain", (230, 230, 230)),  # a near-white box on a near-white backdrop
    ],
)
def test_synthetic_studio_shots(models_dir: Path, shape: str, backdrop: str, colour: tuple[int, int, int]) -> None:
    synth = render_product_photo(shape, size=(384, 384), backdrop=backdrop, shadow=True, product_rgb=colour)
    cutter = U2netCutter(options(models_dir))
    # The model itself finds the product (before the shared edge refinement)...
    assert iou(predict(cutter.session(), synth.rgb) >= 0.5, synth.mask) >= MIN_IOU
    # ...and the finished cut-out matches the true mask.
    rgba = cutter(synth.rgb)
    assert rgba.shape == (*synth.rgb.shape[:2], 4) and rgba.dtype == np.uint8
    assert iou(rgba[..., 3] >= 128, synth.mask) >= MIN_IOU
    assert rgba[0, 0, 3] == 0 and rgba[..., 3].max() == 255


def test_unavailable_with_a_clear_reason_until_pulled(tmp_path: Path) -> None:
    reason = U2netCutter.unavailable_reason(options(tmp_path))
    assert reason is not None
    assert str(tmp_path / "rembg" / "u2netp.onnx") in reason and "placewright models pull u2netp" in reason
    assert "u2net@-" in CUTTERS.signature("auto", options(tmp_path))
    missing = CutoutSettings(u2net=ModelSpec(model="nope.onnx", models_dir=tmp_path))
    assert "no weights file 'nope.onnx'" in U2netCutter.unavailable_reason(missing)
    assert "is not supported here; name a .onnx file" in U2netCutter.unavailable_reason(
        CutoutSettings(u2net=ModelSpec(model="a/b"))
    )
    assert U2netCutter.source(options(tmp_path)) == f"u2netp (in {tmp_path}/rembg)"


def test_a_model_file_path_and_one_session_per_process(models_dir: Path) -> None:
    path = models_dir / "rembg" / "u2netp.onnx"
    opts = CutoutSettings(u2net=ModelSpec(model=str(path), device="cpu"))
    assert U2netCutter.unavailable_reason(opts) is None and U2netCutter.source(opts) == str(path)
    synth = render_product_photo("can", size=(256, 256), backdrop="gradient")
    for _ in range(2):
        assert iou(U2netCutter(opts)(synth.rgb)[..., 3] >= 128, synth.mask) >= MIN_IOU
    assert MODELS.loads[("u2net", str(path.resolve()), ("CPUExecutionProvider",))] == 1


@pytest.fixture
def no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """rembg downloads through pooch.retrieve: make any attempt fail loudly."""
    pooch = pytest.importorskip("pooch")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"rembg tried to download {args[:1]}")

    monkeypatch.setattr(pooch, "retrieve", refuse)


@pytest.mark.usefixtures("no_downloads")
def test_rembg_backend_runs_the_same_real_u2netp(models_dir: Path, example: tuple[np.ndarray, np.ndarray]) -> None:
    pytest.importorskip("rembg")  # the ai extra
    from placewright.cutout.rembg import RembgCutter

    rgb, truth = example
    opts = options(models_dir)
    opts = opts.model_copy(update={"rembg": opts.rembg.model_copy(update={"model": "u2netp"})})
    assert RembgCutter.unavailable_reason(opts) is None
    rembg_alpha = RembgCutter(opts)(rgb)[..., 3]
    assert iou(rembg_alpha >= 128, truth) >= MIN_IOU
    # Same model, same pre- and post-processing: the two backends agree.
    ours = U2netCutter(opts)
    assert iou(ours(rgb)[..., 3] >= 128, rembg_alpha >= 128) >= 0.995
    theirs = np.asarray(RembgCutter(opts).session().predict(Image.fromarray(rgb))[0], np.float32) / 255.0
    diff = np.abs(predict(ours.session(), rgb) - theirs)
    assert diff.mean() < 0.003 and diff.max() < 0.05, "rembg's mask is ours rounded to 8 bits"


def test_runs_in_the_light_install_without_rembg_or_torch(models_dir: Path, tmp_path: Path) -> None:
    """The default install has no ai extra: with rembg and torch unimportable, u2net still cuts out."""
    script = f"""
import sys, time
sys.modules["rembg"] = None  # import rembg raises ImportError, as without the ai extra
sys.modules["torch"] = None
started = time.perf_counter()
import numpy as np
from PIL import Image
from placewright.cutout import cut_out
from placewright.settings import CutoutSettings, ModelSpec
rgb = np.asarray(Image.open({str(EXAMPLE)!r}).convert("RGB"))
spec = ModelSpec(model="u2netp", models_dir={str(models_dir)!r}, device="cpu")
result = cut_out(rgb, options=CutoutSettings(u2net=spec, rembg=spec))
assert "rembg" not in sys.modules or sys.modules["rembg"] is None
print(result.record.backend, [s.split(":")[0] for s in result.record.skipped], round(time.perf_counter() - started, 2))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr
    backend, rest = done.stdout.split(" ", 1)
    assert backend == "u2net" and "'rembg'" in rest  # rembg: skipped, its package is missing


@pytest.mark.usefixtures("no_downloads")
def test_every_onnx_session_is_made_with_the_shared_options(models_dir: Path) -> None:
    """The sessions' thread pools do not spin (they took a core from the stages running beside them), and
    plan no memory pattern (one per input shape: the OCR models get a new shape with nearly every image)."""
    from placewright import ocr
    from placewright.settings import OcrSettings

    opts = options(models_dir)
    sessions = [U2netCutter(opts).session()]
    if importlib.util.find_spec("rembg") is not None:  # the ai extra
        from placewright.cutout.rembg import RembgCutter

        rembg = opts.model_copy(update={"rembg": opts.rembg.model_copy(update={"model": "u2netp"})})
        sessions.append(RembgCutter(rembg).session().inner_session)
    ocr_model = ModelSpec(model="pp-ocrv4", models_dir=pulled("pp-ocrv4"), device="cpu")
    reader = ocr.load_reader(OcrSettings(model=ocr_model))
    sessions += [reader.det, reader.rec]
    for session in sessions:
        made_with = session.get_session_options()
        assert made_with.get_session_config_entry("session.intra_op.allow_spinning") == "0"
        assert made_with.enable_mem_pattern is False
