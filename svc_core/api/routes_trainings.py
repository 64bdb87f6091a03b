"""Training runs: POST /trainings (multipart: the dataset zip as "dataset" + the options JSON as "options") -> 202
with the queued job; followed, cancelled and downloaded with the /jobs endpoints like any job.

The archive is checked before anything is stored (svc_core.jobs.train_dataset: layout, no path escapes or links,
audio only, bounded unpacked size and file count, every clip's audio header, a minimum total duration); the
options by svc_core.jobs.train_params. Scope: "convert" (a training is a long job like a cover; the server's job
limits apply to it the same way).
"""
from __future__ import annotations

import json
import logging
import shutil


from fastapi import APIRouter, Depends, Request

from ..jobs.train_dataset import DatasetError, extract_dataset
from ..jobs.train_params import TRAIN_FIELDS, check_train_params
from .auth import Caller, require
from .routes_jobs import OPTIONS_FIELD, QUEUE_OPTION, IdempotencyKey, _submit
from .schemas import Job, errors
from .uploads import ReceivedFile

DATASET_FIELD = "dataset"
ADOPT_SCAN_JOBS = 200  # newest jobs of a caller looked at for trained voices (broker mode)

log = logging.getLogger("svc_core.api")

router = APIRouter(tags=["jobs"])


def check_dataset_upload(received: ReceivedFile, max_bytes: int, max_seconds: float | None = None):
    """The uploaded archive is a .zip within the upload limit, and its contents pass every dataset check (it is
    unpacked beside the upload to read the clips' headers, then removed)."""
    path = received.path
    if path.suffix.lower() != ".zip":
        raise DatasetError(f"'{received.filename}' is not a .zip archive; zip a folder holding one folder per "
                           "speaker with its clips.")
    trial = path.parent / "dataset-check"
    try:
        extract_dataset(path, trial)
    finally:
        shutil.rmtree(trial, ignore_errors=True)
    return path


def _body() -> dict:
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": [DATASET_FIELD],
        "properties": {
            DATASET_FIELD: {"type": "string", "format": "binary",
                            "description": "A zip laid out as <speaker>/<clip>.wav (flac, ogg, mp3, aiff too): "
                                           "one folder per speaker, at least 10 s of audio in clips of 2 s or more"},
            OPTIONS_FIELD: {"type": "string", "description": "JSON object of training options: "
                            f"{', '.join(TRAIN_FIELDS)} (all optional), e.g. "
                            '{"name": "my voice", "steps": 2000, "batch_size": 4}; '
                            f'"{QUEUE_OPTION}": "cpu" or "gpu" picks the worker queue'}}}}}}}


@router.post("/trainings", status_code=202, response_model=Job, summary="Train a voice on a dataset (multipart)",
             description="The dataset zip goes in the form field 'dataset', the options as JSON in 'options'. "
                         "Answers 202 with the queued job (kind 'train'); follow it at /jobs/{id} (stages "
                         "preprocessing, training, packaging). When done, its results are the release G_<step>.pth, "
                         "config.json, train.log and voice.json, and the new voice is in GET /voices (an upload of "
                         "the caller's: its key is in voice.json and in the job's log).",
             responses=errors(400, 401, 403, 413, 503), openapi_extra=_body())
async def submit_training(request: Request, caller: Caller = Depends(require("convert")),
                          idempotency_key: IdempotencyKey = None):
    return await _submit(request, caller, "train", DATASET_FIELD, idempotency_key,
                         lambda received, size, _seconds: check_dataset_upload(received, size), None,
                         check_options=check_train_params)  # the options before the archive is unpacked


def adopt_trained_voices(ctx, owner: str) -> None:
    """On the broker (`--jobs redis://...`) a training ran on a worker elsewhere, which registered the voice in its
    own library and published it to the blob store: fetch the voices of `owner`'s finished trainings into this
    server's library (svc_core.jobs.voice_sync.ensure_voice), so GET /voices lists them and a submit naming one
    passes its checks. Each job is looked at once; a voice deleted since is not brought back."""
    if ctx.jobs_mode != "broker":
        return
    from ..jobs.train_job import RESULT_VOICE
    from ..jobs.voice_sync import ensure_voice

    seen: set[str] = ctx.__dict__.setdefault("_adopted_trainings", set())
    for record in ctx.service.list(owner=owner, limit=ADOPT_SCAN_JOBS):
        if record.kind != "train" or record.status != "done" or record.id in seen:
            continue
        seen.add(record.id)
        result = next((r for r in record.results if r.name == RESULT_VOICE), None)
        if result is None:
            continue
        try:
            with ctx.service.blobs.open(result.key) as handle:
                key = json.loads(handle.read())["voice"]
            ensure_voice(ctx.library, ctx.service.blobs, key)
        except Exception as err:  # noqa: BLE001 - deleted since, or a damaged copy: listed without it
            log.info("trained voice of job %s not adopted: %s", record.id, err)
