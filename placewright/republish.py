"""A run identical to an earlier one is published from that one's files: no stage runs, nothing is encoded.

After a run is published, a small record is kept under its **run key**: a hash of everything that
decides what the run makes (the product's and backgrounds' bytes, prompts, seeds, every option and
setting, the code's version and the stages' backends). A later run with the same key copies the
earlier run's published files into its own new run folder (a server-side copy on object stores),
writes a manifest with its own run id, time and URLs, and a gallery made from it. A weekly campaign
that changes nothing comes back at once.

Nothing is trusted blindly: the record is JSON validated as a :class:`~placewright.manifest.Manifest`,
and every file it names must still be there with the size recorded; otherwise the run is made the
usual way (stage by stage, with the stages' own caches). ``--refresh`` skips the shortcut.

Records live beside the intermediate images: ``<cache_dir>/runs`` for a local ``--out``,
``<out>/.placewright/runs`` for a remote one.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from placewright import __version__
from placewright.errors import first_line
from placewright.gallery import run_gallery
from placewright.manifest import Manifest, to_json
from placewright.plan import RunPlan
from placewright.publish import GALLERY_NAME, MANIFEST_NAME, PublishedRun
from placewright.settings import Settings
from placewright.stages import stages
from placewright.storage import WORK_FOLDER, Location, is_local, open_location

log = logging.getLogger(__name__)

RECORDS_FOLDER = "runs"
# Settings that do not change what a run makes (where caches live, the service, fault drills' files).
NOT_IN_KEY = frozenset({"cache_dir", "service", "access", "cache_max_bytes", "cache_compression"})
COPY_THREADS = 8
# Folders whose source counts as "the code" of a run.
CODE_PACKAGES = ("placewright", "tasks", "flows")


class RunRecord(BaseModel):
    """What a later identical run needs: the earlier run's folder, manifest and small previews."""

    model_config = ConfigDict(extra="forbid")

    run_path: str
    manifest: Manifest
    sheet_preview: str | None = None  # base64 JPEG
    thumbnails: dict[int, str] = {}  # variant index -> base64 JPEG


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """A hash of the source of every module that takes part in a run (read once per process)."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(__version__.encode())
    for package in CODE_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def run_key(plan: RunPlan, settings: Settings) -> str:
    """The hash of everything that decides what ``plan`` makes (see the module docstring)."""
    backends = {}
    for stage in stages():
        if stage.registry is not None:
            options = getattr(settings, stage.section)
            backends[stage.name] = stage.registry.signature(getattr(options, "backend", "auto"), options)
    payload = {
        "code": code_version(),
        # The sources' names count too: analysis reads the product's name from its file name.
        "product": [plan.product.source, plan.product.sha256],
        "variants": [[v.index, v.seed, v.prompt, v.background, v.background_sha256] for v in plan.variants],
        "request": plan.request.model_dump(mode="json", exclude={"product", "backgrounds", "prompts"}),
        "settings": settings.model_dump(mode="json", exclude=set(NOT_IN_KEY)),
        "backends": backends,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def records_url(out: str, settings: Settings) -> str:
    """Where run records for runs published to ``out`` are kept."""
    if is_local(out):
        return str(Path(settings.cache_dir) / RECORDS_FOLDER)
    return f"{out.rstrip('/')}/{WORK_FOLDER}/{RECORDS_FOLDER}"


def remember(out: str, key: str, published: PublishedRun, run_path: str, settings: Settings) -> None:
    """Keep the record of a published run under ``key`` (failures only logged: it is a shortcut).

    A run in which a backend failed and its stage fell back is not kept, as its stages' results are not
    cached: the next run tries the preferred backend again.
    """
    manifest = published.manifest
    if any(record.fallback_from is not None for v in manifest.variants for record in v.stages.values()):
        return
    record = RunRecord(
        run_path=run_path,
        manifest=published.manifest,
        sheet_preview=base64.b64encode(published.sheet_preview).decode() if published.sheet_preview else None,
        thumbnails={i: base64.b64encode(b).decode() for i, b in published.thumbnails.items()},
    )
    try:
        store = open_location(records_url(out, settings), settings.storage)
        store.fs.makedirs(store.root, exist_ok=True)
        _write(store, f"{key}.json", record.model_dump_json().encode())
    except Exception as exc:  # a read-only cache must not fail a published run
        log.warning("could not keep the run record %s: %s", key[:12], first_line(exc))


def republish(
    out: str, key: str, *, run_path: str, run_id: str, created_at: str, settings: Settings
) -> PublishedRun | None:
    """Publish the run recorded under ``key`` again as ``run_path``; None when there is no sound record."""
    try:
        store = open_location(records_url(out, settings), settings.storage)
        raw = store.fs.cat_file(store.path(f"{key}.json"))
        record = RunRecord.model_validate_json(raw)
    except (FileNotFoundError, ValidationError, ValueError, OSError):
        return None
    location = open_location(out, settings.storage)
    source = record.manifest
    names = _published_names(source)
    try:
        if not _sound(location, record.run_path, source, names):
            return None
        with ThreadPoolExecutor(max_workers=COPY_THREADS) as pool:
            list(pool.map(lambda n: _copy(location, f"{record.run_path}/{n}", f"{run_path}/{n}"), names))
    except Exception as exc:  # a file vanished meanwhile, a store hiccup: make the run the usual way
        log.warning("run record %s not usable (%s): making the run", key[:12], first_line(exc))
        return None
    manifest = _renamed(source, location, run_path, run_id, created_at)
    keyed = lambda name: f"{run_path}/{name}"  # noqa: E731
    page = run_gallery(manifest, absolute=location.url_mode == "presigned").encode()
    _write(location, keyed(GALLERY_NAME), page, "text/html; charset=utf-8")
    _write(location, keyed(MANIFEST_NAME), to_json(manifest).encode(), "application/json")
    return PublishedRun(
        manifest=manifest,
        run_uri=location.uri(run_path),
        manifest_url=location.url_for(keyed(MANIFEST_NAME)),
        written=[keyed(n) for n in (*names, GALLERY_NAME, MANIFEST_NAME)],
        unchanged=[],
        sheet_preview=base64.b64decode(record.sheet_preview) if record.sheet_preview else None,
        thumbnails={i: base64.b64decode(b) for i, b in record.thumbnails.items()},
        copied_from=source.run_id,
    )


def _published_names(manifest: Manifest) -> list[str]:
    names = [manifest.product.cutout]
    for variant in manifest.variants:
        names.append(variant.image)
        if variant.preview:
            names.append(variant.preview)
    if manifest.contact_sheet:
        names.append(manifest.contact_sheet)
    return names


def _sound(location: Location, run_path: str, manifest: Manifest, names: list[str]) -> bool:
    """Every file the earlier run published is still there, the images at their recorded sizes."""
    sizes = {v.image: v.bytes for v in manifest.variants}
    for name in names:
        try:
            size = location.fs.size(location.path(f"{run_path}/{name}"))
        except (FileNotFoundError, OSError):
            return False
        if size is None or (name in sizes and size != sizes[name]):
            return False
    return True


def _copy(location: Location, source: str, target: str) -> None:
    if not location.local:
        location.fs.copy(location.path(source), location.path(target))  # server-side on object stores
        return
    target_path = location.path(target)
    location.fs.makedirs(target_path.rsplit("/", 1)[0], exist_ok=True)
    partial = f"{target_path}.{uuid.uuid4().hex[:8]}.partial"
    try:
        location.fs.copy(location.path(source), partial)
        location.fs.mv(partial, target_path)
    finally:
        if location.fs.exists(partial):
            location.fs.rm(partial)


def _write(location: Location, key: str, data: bytes, content_type: str = "application/json") -> None:
    from placewright.storage import write_atomically

    options: dict[str, Any] = {} if location.local else {"ContentType": content_type}
    write_atomically(location.fs, location.path(key), data, local=location.local, **options)


def _renamed(source: Manifest, location: Location, run_path: str, run_id: str, created_at: str) -> Manifest:
    """The earlier run's manifest as this run's: its id, time, folder and URLs."""
    url = lambda name: location.url_for(f"{run_path}/{name}")  # noqa: E731
    expires = None
    if location.url_mode == "presigned":
        lifetime = timedelta(seconds=location.settings.presign_expiry_s)
        expires = (datetime.now(UTC) + lifetime).isoformat(timespec="seconds")
    variants = [
        v.model_copy(update={"url": url(v.image), "preview_url": url(v.preview) if v.preview else None})
        for v in source.variants
    ]
    return source.model_copy(
        update={
            "run_id": run_id,
            "created_at": created_at,
            "location": location.uri(run_path),
            "urls_expire_at": expires,
            "product": source.product.model_copy(update={"cutout_url": url(source.product.cutout)}),
            "variants": variants,
            "contact_sheet_url": url(source.contact_sheet) if source.contact_sheet else None,
            "gallery_url": url(source.gallery) if source.gallery else None,
        }
    )
