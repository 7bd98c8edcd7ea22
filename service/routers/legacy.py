"""The prototype's three routes, unchanged for its clients: its field names, its answers, its webhook body.

``POST /image/generate`` (multipart ``product_image``, ``background_prompt``, ``product_placement``,
``webhook_url``) answers ``{job_id, status: "pending", message}``; ``GET /image/status/{job_id}``
answers ``{job_id, status, created_at, completed_at, public_url}``; ``GET /image/output/{filename}``
serves ``<job_id>.<ext>``, the job's image. Status words are the prototype's: pending, processing,
completed, failed (and canceled). Underneath each is a v1 job like any other: durable, keyed, limited,
its webhook signed (the prototype's body, Standard Webhooks headers added).
"""

from __future__ import annotations

import mimetypes
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import Response
from pydantic import ValidationError

from placewright.request import RunRequest
from placewright.storage import open_location
from placewright.validation import describe
from service.deps import LegacyKeyDep, RuntimeDep
from service.intake import check_public_url, image_upload, job_request
from service.problems import ApiProblem, problem_responses
from service.records import IdempotencyMismatch
from service.runtime import TooMany, body_digest
from service.schemas import LegacyAccepted, LegacyStatus
from service.views import legacy_view

router = APIRouter(prefix="/image", tags=["prototype compatibility"])


@router.post(
    "/generate",
    response_model=LegacyAccepted,
    responses=problem_responses(400, 401, 413, 422, 429),
    summary="The prototype's job submission (multipart)",
)
def generate(
    rt: RuntimeDep,
    key: LegacyKeyDep,
    product_image: Annotated[UploadFile, File()],
    background_prompt: Annotated[str | None, Form()] = None,
    product_placement: Annotated[str | None, Form()] = None,
    webhook_url: Annotated[str | None, Form()] = None,
) -> LegacyAccepted:
    data = product_image.file.read()
    extension = image_upload(data, "product_image", rt.settings)
    fields: dict[str, object] = {}
    if background_prompt and background_prompt.strip():
        fields["prompts"] = [background_prompt]
    if product_placement and product_placement.strip():
        fields["surface"] = product_placement
    try:  # checked with a stand-in for where the upload will be kept (under the uploads folder)
        contract = RunRequest.model_validate({**fields, "product": f"{rt.places.uploads}/{key.id}/upload{extension}"})
    except ValidationError as exc:
        raise ApiProblem(422, describe(exc, RunRequest)) from None
    run = job_request(contract, key, rt.settings, rt.places)
    if webhook_url:
        check_public_url(webhook_url, "webhook_url", rt.settings)
    # Everything checked: now the upload is kept.
    fields["product"] = rt.store_upload(key, data, extension)
    run = run.model_copy(update={"product": fields["product"]})
    try:
        job, _ = rt.submit(
            key,
            run.model_dump(mode="json", exclude_none=True),
            webhook_url=webhook_url or None,
            api="legacy",
            idempotency_key=None,
            body_sha256=body_digest(fields),
        )
    except (TooMany, IdempotencyMismatch) as exc:
        retry = str(getattr(exc, "retry_after", 5))
        raise ApiProblem(429, str(exc), headers={"Retry-After": retry}) from None
    return LegacyAccepted(job_id=job.id, status="pending", message="Job accepted; poll /image/status/{job_id}")


@router.get(
    "/status/{job_id}",
    response_model=LegacyStatus,
    responses=problem_responses(401, 404, 429),
    summary="The prototype's job status",
)
def status(job_id: str, rt: RuntimeDep, key: LegacyKeyDep) -> LegacyStatus:
    job = rt.records.job(job_id, key.id)
    if job is None:
        raise ApiProblem(404, "Job not found")
    return legacy_view(rt.refresh(job), rt.places.base_url)


@router.get(
    "/output/{filename}",
    response_class=Response,
    responses={200: {"content": {"image/*": {}}, "description": "The image"}} | problem_responses(401, 404, 429),
    summary="The prototype's output file: <job_id>.<ext>",
)
def output(filename: str, rt: RuntimeDep, key: LegacyKeyDep) -> Response:
    job_id = filename.rsplit(".", 1)[0]
    job = rt.records.job(job_id, key.id)
    if job is None or job.state != "succeeded" or not job.result or not job.result.get("images"):
        raise ApiProblem(404, "Output not found")
    location = open_location(job.request["out"], rt.settings.storage)
    from service.engine import run_folder

    flow_run = rt.engine.read_run(job.flow_run_id) if job.flow_run_id else None
    if flow_run is None:
        raise ApiProblem(404, "Output not found")
    try:
        image_name = _first_image(location, run_folder(flow_run))
        data = location.fs.cat_file(location.path(image_name))
    except FileNotFoundError:  # removed from the store since (a retention policy): gone, not a server error
        raise ApiProblem(404, "Output not found") from None
    media = mimetypes.guess_type(image_name)[0] or "application/octet-stream"
    return Response(content=data, media_type=media, headers={"Cache-Control": "private, max-age=3600"})


def _first_image(location, run_id: str) -> str:  # type: ignore[no-untyped-def]
    from placewright.manifest import Manifest

    manifest = Manifest.model_validate_json(location.fs.cat_file(location.path(f"{run_id}/manifest.json")))
    if not manifest.variants:
        raise ApiProblem(404, "Output not found")
    return f"{run_id}/{manifest.variants[0].image}"
