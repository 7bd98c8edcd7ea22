"""``/v1/jobs``: create (JSON or upload), read, list, cancel, and a job's result."""

from __future__ import annotations

import json
import re
from typing import Annotated

from fastapi import APIRouter, File, Form, Header, Query, Request, Response, UploadFile
from pydantic import ValidationError

from placewright.errors import first_line
from placewright.request import RunRequest
from placewright.validation import describe
from service.deps import KeyDep, RuntimeDep
from service.intake import check_public_url, image_upload, job_request
from service.problems import ApiProblem, problem_responses
from service.records import ApiKey, IdempotencyMismatch, JobRecord
from service.runtime import Runtime, TooMany, body_digest
from service.schemas import Job, JobCreate, JobList, JobResult
from service.views import job_view

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d+)", re.IGNORECASE)
MAX_IDEMPOTENCY_KEY = 255
COMMON = problem_responses(401, 429)


def _prefer_wait(prefer: str | None, limit: float) -> int | None:
    match = PREFER_WAIT.search(prefer or "")
    return min(int(match.group(1)), int(limit)) if match else None


def _answer(
    rt: Runtime, job: JobRecord, request: Request, response: Response, *, created: bool, prefer: str | None
) -> Job:
    wait = _prefer_wait(prefer, rt.settings.service.max_wait_s)
    if wait:
        job = rt.wait(job, wait)
        response.headers["Preference-Applied"] = f"wait={wait}"
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"{rt.places.base_url}/v1/jobs/{job.id}"
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return job_view(job, rt.places.base_url, rt.records.attempts(job.id))


def _submit(
    rt: Runtime, key: ApiKey, request: RunRequest, webhook_url: str | None, idempotency_key: str | None, digest: str
) -> tuple[JobRecord, bool]:
    if idempotency_key is not None and not (0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY):
        raise ApiProblem(422, f"Idempotency-Key must be 1..{MAX_IDEMPOTENCY_KEY} characters")
    if webhook_url is not None:
        check_public_url(webhook_url, "webhook_url", rt.settings)
    try:
        return rt.submit(
            key,
            request.model_dump(mode="json", exclude_none=True),
            webhook_url=webhook_url,
            api="v1",
            idempotency_key=idempotency_key,
            body_sha256=digest,
        )
    except IdempotencyMismatch:
        raise ApiProblem(422, "this Idempotency-Key was used with a different request body") from None
    except TooMany as exc:
        raise ApiProblem(429, str(exc), headers={"Retry-After": str(exc.retry_after)}) from None


@router.post(
    "",
    status_code=201,
    response_model=Job,
    responses={200: {"model": Job, "description": "The job made earlier with this Idempotency-Key"}}
    | problem_responses(400, 401, 413, 422, 429),
    summary="Create a job from the run contract (product as a URL)",
)
def create_job(
    body: JobCreate,
    rt: RuntimeDep,
    key: KeyDep,
    request: Request,
    response: Response,
    idempotency_key: Annotated[str | None, Header()] = None,
    prefer: Annotated[str | None, Header(description="wait=N: answer when the job ends, or after N seconds")] = None,
) -> Job:
    """Start a job. The answer comes at once (``queued``) unless ``Prefer: wait=N`` asks to wait."""
    run = job_request(body.request, key, rt.settings, rt.places)
    digest = body_digest(body.model_dump(mode="json"))
    job, created = _submit(rt, key, run, body.webhook_url, idempotency_key, digest)
    return _answer(rt, job, request, response, created=created, prefer=prefer)


@router.post(
    "/upload",
    status_code=201,
    response_model=Job,
    responses={200: {"model": Job, "description": "The job made earlier with this Idempotency-Key"}}
    | problem_responses(400, 401, 413, 422, 429),
    summary="Create a job with the product photo (and backgrounds) uploaded",
)
def create_job_upload(
    rt: RuntimeDep,
    key: KeyDep,
    request: Request,
    response: Response,
    product: Annotated[UploadFile, File(description="The product photo.")],
    options: Annotated[
        str | None,
        Form(description="The rest of the run contract as JSON: prompts, backgrounds (URLs), size, seed, ..."),
    ] = None,
    webhook_url: Annotated[str | None, Form()] = None,
    backgrounds: Annotated[list[UploadFile] | None, File(description="Background images, one variant each.")] = None,
    idempotency_key: Annotated[str | None, Header()] = None,
    prefer: Annotated[str | None, Header()] = None,
) -> Job:
    """Start a job from uploaded files: the product, optional backgrounds, the options as JSON."""
    try:
        fields = json.loads(options) if options else {}
    except json.JSONDecodeError as exc:
        raise ApiProblem(422, f"options: not JSON ({exc.msg})") from None
    if not isinstance(fields, dict):
        raise ApiProblem(422, "options: must be a JSON object")
    if "product" in fields:
        raise ApiProblem(422, "options.product: the product is the uploaded file")
    if not isinstance(fields.get("backgrounds", []), list):
        raise ApiProblem(422, "options.backgrounds: must be a list of URLs (upload files as 'backgrounds')")
    data = product.file.read()
    images = [(data, image_upload(data, "product", rt.settings))]
    for upload in backgrounds or []:
        content = upload.file.read()
        images.append((content, image_upload(content, "background", rt.settings)))
    # Everything is checked before anything is stored: the contract with stand-ins for the uploads'
    # locations (under the uploads folder, as theirs will be), then the uploads are kept.
    stand_ins = [f"{rt.places.uploads}/{key.id}/upload-{i}{ext}" for i, (_, ext) in enumerate(images)]
    run = job_request(_upload_contract(fields, stand_ins), key, rt.settings, rt.places)
    stored = [rt.store_upload(key, content, ext) for content, ext in images]
    given = len(run.backgrounds) - len(stored[1:])
    run = run.model_copy(update={"product": stored[0], "backgrounds": [*run.backgrounds[:given], *stored[1:]]})
    fields = {**fields, "product": stored[0], "backgrounds": [*fields.get("backgrounds", []), *stored[1:]]}
    digest = body_digest({"request": fields, "webhook_url": webhook_url})
    job, created = _submit(rt, key, run, webhook_url, idempotency_key, digest)
    return _answer(rt, job, request, response, created=created, prefer=prefer)


def _upload_contract(fields: dict, locations: list[str]) -> RunRequest:
    """The run contract of an upload: ``options`` with the product and uploaded backgrounds at ``locations``."""
    fields = {**fields, "product": locations[0], "backgrounds": [*fields.get("backgrounds", []), *locations[1:]]}
    try:
        return RunRequest.model_validate(fields)
    except ValidationError as exc:
        raise ApiProblem(422, f"options: {describe(exc, RunRequest)}") from None


def _owned(rt: Runtime, key: ApiKey, job_id: str) -> JobRecord:
    job = rt.records.job(job_id, key.id)
    if job is None:
        raise ApiProblem(404, f"no job {job_id[:80]!r} for this key")
    return job


@router.get("", response_model=JobList, responses=COMMON | problem_responses(422), summary="List this key's jobs")
def list_jobs(
    rt: RuntimeDep,
    key: KeyDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    state: Annotated[str | None, Query(pattern="^(queued|running|succeeded|failed|canceled)$")] = None,
) -> JobList:
    """The key's jobs, newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""
    try:
        page = rt.records.jobs_page(key.id, limit=limit, cursor=cursor, state=state)
    except ValueError:
        raise ApiProblem(422, "cursor: not a cursor this service gave out") from None
    return JobList(jobs=[job_view(j, rt.places.base_url) for j in page.jobs], next_cursor=page.next_cursor)


@router.get("/{job_id}", response_model=Job, responses=COMMON | problem_responses(404), summary="Read a job")
def read_job(
    job_id: str,
    rt: RuntimeDep,
    key: KeyDep,
    response: Response,
    prefer: Annotated[str | None, Header(description="wait=N: answer when the job ends, or after N seconds")] = None,
) -> Job:
    job = rt.refresh(_owned(rt, key, job_id))
    wait = _prefer_wait(prefer, rt.settings.service.max_wait_s)
    if wait:
        job = rt.wait(job, wait)
        response.headers["Preference-Applied"] = f"wait={wait}"
    return job_view(job, rt.places.base_url, rt.records.attempts(job.id))


@router.get(
    "/{job_id}/result",
    response_model=JobResult,
    responses=COMMON | problem_responses(404, 409),
    summary="A succeeded job's images, manifest and verdicts",
)
def job_result(job_id: str, rt: RuntimeDep, key: KeyDep) -> JobResult:
    job = rt.refresh(_owned(rt, key, job_id))
    if job.state != "succeeded" or job.result is None:
        raise ApiProblem(409, f"job {job.id} is {job.state}: only a succeeded job has a result", state=job.state)
    return JobResult.model_validate(job.result)


@router.post(
    "/{job_id}/cancel",
    response_model=Job,
    responses=COMMON | problem_responses(404, 409, 503),
    summary="Cancel a queued or running job",
)
def cancel_job(job_id: str, rt: RuntimeDep, key: KeyDep) -> Job:
    job = rt.refresh(_owned(rt, key, job_id))
    if job.state in ("succeeded", "failed"):
        raise ApiProblem(409, f"job {job.id} has already {job.state}", state=job.state)
    try:
        job = rt.cancel(job)
    except Exception as exc:  # the Prefect API is down: say so rather than a 500
        raise ApiProblem(503, f"cannot reach the job engine: {first_line(exc)}", headers={"Retry-After": "5"}) from None
    return job_view(job, rt.places.base_url, rt.records.attempts(job.id))
