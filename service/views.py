"""How a job record reads in answers and webhook bodies: the v1 view and the prototype's view.

One place turns a :class:`~service.records.JobRecord` into what clients see, so a GET, a list, a
webhook body and the prototype's status answer cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from placewright.manifest import Manifest
from service.records import DeliveryAttempt, JobRecord
from service.schemas import Delivery, Job, JobLinks, JobResult, LegacyStatus

# The prototype's status words for the job states.
LEGACY_STATUS = {
    "queued": "pending",
    "running": "processing",
    "succeeded": "completed",
    "failed": "failed",
    "canceled": "canceled",
}
EVENT_TYPES = {"succeeded": "job.succeeded", "failed": "job.failed", "canceled": "job.canceled"}


def job_view(job: JobRecord, base_url: str, attempts: list[DeliveryAttempt] | None = None) -> Job:
    """The v1 API's view of a job."""
    base = f"{base_url.rstrip('/')}/v1/jobs/{job.id}"
    return Job(
        id=job.id,
        state=job.state,
        created_at=job.created_at,
        updated_at=job.updated_at,
        completed_at=job.completed_at,
        request=job.request,
        webhook_url=job.webhook_url,
        error=job.error,
        result=JobResult.model_validate(job.result) if job.result is not None else None,
        deliveries=[
            Delivery(event_id=a.event_id, number=a.number, at=a.at, status_code=a.status_code, error=a.error)
            for a in attempts or []
        ],
        links=JobLinks(self=base, cancel=f"{base}/cancel", result=f"{base}/result"),
    )


def legacy_public_url(job: JobRecord, base_url: str) -> str | None:
    """The prototype's ``public_url``: the job's first image, served at ``/image/output/<job id>.<ext>``."""
    if job.state != "succeeded" or not job.result or not job.result.get("images"):
        return None
    url = job.result["images"][0]["url"]
    extension = url.rsplit("?", 1)[0].rsplit(".", 1)[-1]
    return f"{base_url.rstrip('/')}/image/output/{job.id}.{extension}"


def legacy_view(job: JobRecord, base_url: str) -> LegacyStatus:
    """The prototype's ``GET /image/status/{job_id}`` answer."""
    return LegacyStatus(
        job_id=job.id,
        status=LEGACY_STATUS[job.state],
        created_at=job.created_at,
        completed_at=job.completed_at,
        public_url=legacy_public_url(job, base_url),
        error=job.error,
    )


def webhook_payload(job: JobRecord, base_url: str) -> dict[str, Any]:
    """The body of a job's webhook: the prototype's shape for its routes, Standard Webhooks' for v1."""
    if job.api == "legacy":
        body: dict[str, Any] = {"job_id": job.id, "status": LEGACY_STATUS[job.state], "completed_at": job.completed_at}
        if job.state == "succeeded":
            body["public_url"] = legacy_public_url(job, base_url)
        else:
            body["error"] = job.error or job.state
        return body
    return {
        "type": EVENT_TYPES[job.state],
        "timestamp": job.completed_at,
        "data": job_view(job, base_url).model_dump(mode="json", exclude={"deliveries"}),
    }


def result_of(manifest: Manifest, manifest_url: str | None) -> dict[str, Any]:
    """A succeeded job's result (images, verdicts, what was left out) from its manifest."""
    images = [
        {
            "index": v.index,
            "url": v.url,
            "preview_url": v.preview_url,
            "prompt": v.prompt,
            "background": v.background,
            "seed": v.seed,
            "width": v.width,
            "height": v.height,
            "verdict": v.verdict,
            "quality": v.quality.summary() if v.quality is not None and v.verdict == "needs_review" else None,
        }
        for v in manifest.variants
    ]
    dropped = [
        {"index": d.index, "prompt": d.prompt, "background": d.background, "reason": d.quality.summary()}
        for d in manifest.dropped
    ]
    return JobResult(
        manifest_url=manifest_url,
        images=images,
        dropped=dropped,
        needs_review=sum(1 for v in manifest.variants if v.verdict == "needs_review"),
        contact_sheet_url=manifest.contact_sheet_url,
        gallery_url=manifest.gallery_url,
    ).model_dump(mode="json")
