"""Response bodies of the API (pydantic), so the OpenAPI schema describes every answer a client gets."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    code: str = Field(description="Stable code to branch on (svc_core/jobs/errors.py), e.g. file_too_large")
    message: str = Field(description="What went wrong, for people; may change between versions")


class ErrorResponse(BaseModel):
    error: ErrorBody


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    jobs: str = Field(description="Where jobs run: 'embedded' (in-process workers) or 'broker' (Dramatiq/Redis)")
    auth_required: bool = Field(description="Whether this server asks callers for a token or login")


class Version(BaseModel):
    version: str = Field(description="svc-studio version")
    api: str = Field(description="API version (the /api/v1 prefix)")


class Voice(BaseModel):
    key: str = Field(description="What to pass as options.model")
    label: str
    speakers: list[str] = Field(description="Speaker names; options.speaker picks one ('' -> the first)")
    family: str = Field(description="so-vits, world, rvc, so-vits-onnx, ...")
    speech_encoder: str
    uploaded: bool
    mine: bool = Field(description="Uploaded by the caller (the caller may delete it)")
    has_cluster: bool = Field(description="Has a cluster / feature-retrieval file (options.cluster_ratio)")
    has_diffusion: bool = Field(description="Has a shallow-diffusion model")


class VoiceList(BaseModel):
    voices: list[Voice]


class Deleted(BaseModel):
    deleted: str


class ResultInfo(BaseModel):
    name: str = Field(description="File name; download at /jobs/{id}/results/{name}")
    size: int = Field(description="Bytes")
    media_type: str


class Job(BaseModel):
    """A job as clients see it (svc_core.jobs.model.JobRecord.public())."""

    id: str
    kind: Literal["convert", "cover", "train"]
    owner: str
    params: dict[str, Any] = Field(description="The checked options")
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    stage: str = Field(description="Short words: queued, loading voice, converting, separating, writing, ...")
    progress: float = Field(description="0..1")
    eta_seconds: float | None = Field(description="Seconds left, estimated; null when unknown")
    message: str = Field(description="Newest log line")
    log: list[str]
    timings: dict[str, float] = Field(description="Stage -> seconds, plus queue_wait and total")
    results: list[ResultInfo]
    error: ErrorBody | None
    created_at: float = Field(description="Unix seconds")
    started_at: float | None
    finished_at: float | None
    attempts: int
    max_attempts: int
    worker: str | None
    heartbeat_at: float | None
    cancel_requested: bool
    queue: Literal["cpu", "gpu"]


class JobList(BaseModel):
    jobs: list[Job]


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the JSON error body under each status."""
    words = {400: "Bad request (bad_request, invalid_option, unknown_field, unsupported_audio, ...)",
             401: "No or unknown credentials (unauthorized, token_revoked)", 403: "Missing scope (forbidden)",
             404: "Not found (job_not_found, voice_not_found, result_not_found, not_found)",
             409: "Not finished yet (not_finished)", 413: "Upload too large (file_too_large, audio_too_long)",
             429: "Too many unfinished jobs, the caller's or the server's (busy); see Retry-After",
             503: "Busy: the queue does not answer (busy)"}
    return {status: {"model": ErrorResponse, "description": words.get(status, "Error")} for status in statuses}
