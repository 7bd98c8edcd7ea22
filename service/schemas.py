"""What the service's routes take and answer: typed models, so the OpenAPI schema says exactly that.

A job's request is the run contract itself (:class:`placewright.request.RunRequest`): the same model
the CLI builds, the place-product flow takes and a campaign's products expand into. The service
only decides where a job publishes (``out`` is its own).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from placewright.request import MAX_LOCATION_CHARS, RunRequest

JobStateName = Literal["queued", "running", "succeeded", "failed", "canceled"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobCreate(_Model):
    """A new job: the run contract, and where to call back when it ends."""

    request: RunRequest = Field(
        description="The run contract: product (an http(s) or storage URL), prompts and/or backgrounds, options. "
        "Leave out 'out': the service publishes each key's jobs in the key's own folder."
    )
    webhook_url: str | None = Field(
        default=None,
        max_length=MAX_LOCATION_CHARS,
        description="Called (POST, Standard Webhooks signature) when the job succeeds, fails or is canceled. "
        "Public http(s) addresses only, unless the operator allows the host.",
    )


class ImageResult(_Model):
    """One published variant."""

    index: int
    url: str = Field(description="The full-size image.")
    preview_url: str | None = None
    prompt: str | None = None
    background: str | None = None
    seed: int
    width: int
    height: int
    verdict: str = Field(description="The quality gate's verdict: passed, needs_review or unchecked.")
    quality: str | None = Field(default=None, description="The failed checks of a variant that needs review.")


class DroppedResult(_Model):
    """A variant the quality gate left out."""

    index: int
    prompt: str | None = None
    background: str | None = None
    reason: str


class JobResult(_Model):
    """What a succeeded job published."""

    manifest_url: str | None = None
    images: list[ImageResult] = Field(default_factory=list)
    dropped: list[DroppedResult] = Field(default_factory=list)
    needs_review: int = 0
    contact_sheet_url: str | None = None
    gallery_url: str | None = None


class Delivery(_Model):
    """One webhook delivery attempt."""

    event_id: str
    number: int
    at: str
    status_code: int | None = None
    error: str | None = None


class JobLinks(_Model):
    self: str
    cancel: str
    result: str


class Job(_Model):
    """A job as the API shows it."""

    id: str
    state: JobStateName
    created_at: str
    updated_at: str | None = None
    completed_at: str | None = None
    request: dict[str, Any] = Field(description="The run contract the job runs (product as stored).")
    webhook_url: str | None = None
    error: str | None = Field(default=None, description="Why a failed job failed (one line).")
    result: JobResult | None = None
    deliveries: list[Delivery] = Field(default_factory=list, description="Webhook delivery attempts, in order.")
    links: JobLinks


class JobList(_Model):
    """A page of jobs, newest first."""

    jobs: list[Job]
    next_cursor: str | None = Field(default=None, description="Pass as ?cursor= for the next page (None: last page).")


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (``application/problem+json``)."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


class Health(_Model):
    status: Literal["ok"]


class Readiness(_Model):
    status: Literal["ready", "not ready"]
    checks: dict[str, str]


# --- the prototype's routes, with its field names --------------------------------------------
class LegacyAccepted(_Model):
    job_id: str
    status: str
    message: str


class LegacyStatus(_Model):
    job_id: str
    status: str = Field(description="pending, processing, completed, failed or canceled.")
    created_at: str
    completed_at: str | None = None
    public_url: str | None = None
    error: str | None = None
