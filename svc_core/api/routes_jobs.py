"""Conversions, covers and jobs: submit (multipart: the file + an "options" JSON field; Idempotency-Key), list own
jobs, status, cancel, a server-sent-events stream of a job's record, and its result files.

A job is the caller's: others get 404 job_not_found for it (admins see every job).
"""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Annotated, AsyncIterator

import anyio
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ..audio import MAX_DURATION_SECONDS
from ..jobs import errors as codes
from ..jobs.errors import JobNotFound
from ..jobs.model import QUEUES, JobRecord
from .auth import Caller, require
from .errors import problem
from .schemas import Job, JobList, errors
from .uploads import FormLimits, ReceivedForm, check_audio_upload, check_song_upload, receive_form

OPTIONS_FIELD = "options"
QUEUE_OPTION = "queue"  # taken out of the options: which worker queue runs the job ("cpu" or "gpu")
MAX_KEY_CHARS = 200  # Idempotency-Key
EVENT_POLL_SECONDS = 0.25  # how often the events stream looks at the record
KEEPALIVE_SECONDS = 15.0  # an SSE comment line this often when nothing changes (proxies close idle streams)
DOWNLOAD_CHUNK_BYTES = 256 * 1024
DEFAULT_LIST_LIMIT = 50
MAX_LIST_LIMIT = 500

router = APIRouter(tags=["jobs"])


def _submit_body(file_field: str, what: str) -> dict:
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": [file_field, OPTIONS_FIELD],
        "properties": {
            file_field: {"type": "string", "format": "binary", "description": what},
            OPTIONS_FIELD: {"type": "string", "description": "JSON object of options, the page's: at least "
                            '{"model": <voice key>}; e.g. {"model": "starter", "speaker": "", "transpose": 0}; '
                            f'"{QUEUE_OPTION}": "cpu" or "gpu" picks the worker queue'}}}}}}}


def _options(form: ReceivedForm, file_field: str) -> tuple[dict, str]:
    if file_field in form.fields:
        raise problem(codes.BAD_REQUEST, f"'{file_field}' came as text; send it as a file (curl -F "
                      f"{file_field}=@file.wav).", 400)
    unknown = sorted(set(form.fields) - {OPTIONS_FIELD})
    if unknown:
        raise problem(codes.UNKNOWN_FIELD, f"Unknown form field(s): {', '.join(unknown)}; send '{file_field}' "
                      f"(the file) and '{OPTIONS_FIELD}' (JSON).", 400)
    try:
        options = json.loads(form.fields.get(OPTIONS_FIELD) or "{}")
    except ValueError as err:
        raise problem(codes.BAD_REQUEST, f"The '{OPTIONS_FIELD}' field is not JSON: {err}.", 400) from None
    if not isinstance(options, dict):
        raise problem(codes.BAD_REQUEST, f"The '{OPTIONS_FIELD}' field must be a JSON object.", 400)
    queue = options.pop(QUEUE_OPTION, "cpu")
    if queue not in QUEUES:
        raise problem(codes.INVALID_OPTION, f"{QUEUE_OPTION} must be one of {', '.join(QUEUES)}; got {queue!r}.", 400)
    return options, queue


def _idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > MAX_KEY_CHARS or not value.isprintable():
        raise problem(codes.BAD_REQUEST, f"Idempotency-Key must be 1-{MAX_KEY_CHARS} printable characters.", 400)
    return value


def _accepted(record: JobRecord) -> JSONResponse:
    return JSONResponse(record.public(), status_code=202, headers={"Location": f"jobs/{record.id}"})


async def _submit(request: Request, caller: Caller, kind: str, file_field: str, key: str | None,
                  check, max_seconds: float | None, check_options=None) -> JSONResponse:
    """Receive the multipart form (bounded), check the options (`check_options(options)`, before the file is
    looked at) and the file (`check(received, max_bytes, max_seconds) -> path`, off the event loop), submit."""
    ctx = request.app.state.ctx
    key = _idempotency_key(key)  # checked before the body is read
    size = ctx.settings.max_file_size
    limits = FormLimits(max_file_bytes=size, max_total_bytes=size, max_files=1, file_fields=(file_field,))
    form = await receive_form(request, ctx.incoming_dir / uuid.uuid4().hex, limits)
    try:
        options, queue = _options(form, file_field)
        if check_options is not None:
            check_options(options)
        received = form.file(file_field)
        if received is None:
            raise problem(codes.BAD_REQUEST, f"No file: send it as the form field '{file_field}'.", 400)
        path = await run_in_threadpool(check, received, size, max_seconds)
        if ctx.jobs_mode == "broker":  # a voice trained on a worker elsewhere: fetch it before the checks
            from .routes_trainings import adopt_trained_voices

            await run_in_threadpool(adopt_trained_voices, ctx, caller.owner)
        record = await run_in_threadpool(ctx.service.submit, kind, caller.owner, options, {file_field: path},
                                         idempotency_key=key, queue=queue)
    finally:
        form.remove()
    return _accepted(record)


IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", description="Repeat a submit safely: the "
                                              "same key from the same caller returns the first job")]


@router.post("/conversions", status_code=202, response_model=Job, summary="Convert a clip (multipart)",
             description="The clip goes in the form field 'audio', the options as JSON in 'options' (the page's "
                         "options). Answers 202 with the queued job; follow it at /jobs/{id} or /jobs/{id}/events.",
             responses=errors(400, 401, 403, 404, 413, 429, 503), openapi_extra=_submit_body("audio", "The clip"))
async def submit_conversion(request: Request, caller: Caller = Depends(require("convert")),
                            idempotency_key: IdempotencyKey = None):
    return await _submit(request, caller, "convert", "audio", idempotency_key, check_audio_upload,
                         MAX_DURATION_SECONDS)


@router.post("/covers", status_code=202, response_model=Job, summary="Make a song cover (multipart)",
             description="The song (audio, or a video whose audio track is used) goes in the form field 'song', "
                         "the cover options as JSON in 'options'.",
             responses=errors(400, 401, 403, 404, 413, 429, 503), openapi_extra=_submit_body("song", "The song"))
async def submit_cover(request: Request, caller: Caller = Depends(require("convert")),
                       idempotency_key: IdempotencyKey = None):
    from ..song_io import COVER_MAX_SECONDS

    return await _submit(request, caller, "cover", "song", idempotency_key, check_song_upload, COVER_MAX_SECONDS)


@router.get("/jobs", response_model=JobList, summary="The caller's jobs, newest first", responses=errors(401, 403))
def list_jobs(request: Request, caller: Caller = Depends(require("read")),
              limit: int = Query(DEFAULT_LIST_LIMIT, ge=1, le=MAX_LIST_LIMIT)) -> dict:
    records = request.app.state.ctx.service.list(owner=caller.owner_filter(), limit=limit)
    return {"jobs": [r.public() for r in records]}


@router.get("/jobs/{job_id}", response_model=Job, summary="A job's status, stage, progress, ETA, timings, results",
            responses=errors(401, 403, 404))
def get_job(job_id: str, request: Request, caller: Caller = Depends(require("read"))) -> dict:
    return request.app.state.ctx.service.get(job_id, owner=caller.owner_filter()).public()


@router.post("/jobs/{job_id}/cancel", response_model=Job, summary="Cancel a job",
             description="A queued job is cancelled at once; a running one stops at its next check (its status "
                         "turns 'cancelled'). A finished job is returned as it is.",
             responses=errors(401, 403, 404))
def cancel_job(job_id: str, request: Request, caller: Caller = Depends(require("convert"))) -> dict:
    return request.app.state.ctx.service.cancel(job_id, owner=caller.owner_filter()).public()


def _event(record: JobRecord) -> str:
    return f"event: job\nid: {record.id}\ndata: {json.dumps(record.public(), separators=(',', ':'))}\n\n"


async def _job_events(request: Request, service, job_id: str, owner: str | None,
                      first: JobRecord) -> AsyncIterator[str]:
    record, last, quiet_since = first, None, time.monotonic()
    while True:
        snapshot = record.public()
        if snapshot != last:
            last, quiet_since = snapshot, time.monotonic()
            yield _event(record)
            if record.finished:
                return
        elif time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
            quiet_since = time.monotonic()
            yield ": keep-alive\n\n"
        await asyncio.sleep(EVENT_POLL_SECONDS)
        if await request.is_disconnected():
            return
        try:
            record = await anyio.to_thread.run_sync(lambda: service.get(job_id, owner=owner))
        except JobNotFound:  # deleted meanwhile: the stream ends
            return


@router.get("/jobs/{job_id}/events", summary="Server-sent events: the job's record on every change",
            description="`text/event-stream`; each event is `event: job` with the job as JSON in `data` (the same "
                        "body as GET /jobs/{id}), sent at once and on every change, until the job is finished.",
            responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                             "description": "The event stream"}, **errors(401, 403, 404)})
async def job_events(job_id: str, request: Request, caller: Caller = Depends(require("read"))) -> StreamingResponse:
    service = request.app.state.ctx.service
    owner = caller.owner_filter()
    first = await anyio.to_thread.run_sync(lambda: service.get(job_id, owner=owner))  # 404 before streaming
    return StreamingResponse(_job_events(request, service, job_id, owner, first), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _blob_chunks(blobs, key: str):
    with blobs.open(key) as handle:
        while chunk := handle.read(DOWNLOAD_CHUNK_BYTES):
            yield chunk


@router.get("/jobs/{job_id}/results/{name}", summary="Download a result file of a finished job",
            responses={200: {"content": {"application/octet-stream": {"schema": {"type": "string",
                                                                                   "format": "binary"}}},
                             "description": "The file, with its media type (audio/wav, audio/flac, "
                                            "application/zip, ...)"}, **errors(401, 403, 404, 409)})
def get_result(job_id: str, name: str, request: Request, caller: Caller = Depends(require("read"))):
    service = request.app.state.ctx.service
    result, blobs = service.result(job_id, name, owner=caller.owner_filter())
    local = blobs.local_path(result.key)
    if local is not None:
        return FileResponse(local, media_type=result.media_type, filename=result.name)
    return StreamingResponse(_blob_chunks(blobs, result.key), media_type=result.media_type,
                             headers={"Content-Disposition": f'attachment; filename="{result.name}"',
                                      "Content-Length": str(result.size)})
