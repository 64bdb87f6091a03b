"""Voices: list, details, upload (multipart, the page's checks through ModelLibrary.add_upload), delete own uploads.

Who sees an upload: its owner (the token name or "page:<user>" that made it) and admins; when the API is open (a
private loopback server, auth.auth_required), everyone, as the page then lists every upload to every browser. Folder
voices are everyone's and cannot be deleted here.
"""
from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from ..jobs import errors as codes
from ..jobs.errors import VoiceNotFound
from .auth import Caller, require
from .errors import problem
from .routes_trainings import adopt_trained_voices
from .schemas import Deleted, Voice, VoiceList, errors
from .uploads import FormLimits, receive_form

MAX_VOICE_FILES = 8  # generator, config, cluster/index, encoder, diffusion model + yaml, with room to spare
VOICE_FILE_FIELD = "files"
VOICE_NAME_FIELD = "name"

router = APIRouter(tags=["voices"])


def voice_view(entry, caller: Caller, library) -> Voice:
    return Voice(key=entry.key, label=entry.label, speakers=list(entry.speakers), family=entry.family,
                 speech_encoder=entry.speech_encoder, uploaded=entry.uploaded,
                 mine=entry.uploaded and library.upload_owned_by(entry.key, caller.owner),
                 has_cluster=entry.cluster_path is not None, has_diffusion=entry.diffusion is not None)


def _visible(ctx, key: str, caller: Caller) -> bool:
    """`caller` may see the voice `key` (see the module docstring)."""
    library = ctx.library
    if caller.admin or library.upload_owned_by(key, caller.owner):
        return True
    if caller.via == "open":
        return library.visible_to(key, caller.owner)
    return any(entry.key == key for entry in library.folder_entries())


def _visible_entry(ctx, key: str, caller: Caller):
    library = ctx.library
    if not _visible(ctx, key, caller):
        raise VoiceNotFound(f"No voice '{key}' here (or it is another caller's upload).")
    try:
        return library.get(key)
    except Exception as err:  # ModelError: gone since the listing
        raise VoiceNotFound(str(err)) from None


def _share(ctx, entry) -> None:
    """With workers elsewhere (`--jobs redis://...`), put a new upload in the job blob store, where a worker that
    gets a job naming it fetches it (svc_core.jobs.voice_sync); if that fails, the upload is not kept."""
    if ctx.jobs_mode != "broker":
        return
    from ..jobs.voice_sync import publish_voice

    try:
        publish_voice(ctx.service.blobs, entry)
    except BaseException:
        ctx.library.remove_upload(entry.key)
        raise


def _unshare(ctx, key: str) -> None:
    if ctx.jobs_mode == "broker":
        from ..jobs.voice_sync import unpublish_voice

        unpublish_voice(ctx.service.blobs, key)


@router.get("/voices", response_model=VoiceList, summary="List the voices the caller may use",
            responses=errors(401, 403))
def list_voices(request: Request, caller: Caller = Depends(require("read"))) -> VoiceList:
    ctx = request.app.state.ctx
    library = ctx.library
    adopt_trained_voices(ctx, caller.owner)  # broker mode: voices trained on workers elsewhere
    keys = [key for _, key in library.choices(owner=caller.owner)]
    keys += [e.key for e in library.upload_entries() if e.key not in keys]
    keys = [key for key in keys if _visible(ctx, key, caller)]
    voices = []
    for key in keys:
        try:
            voices.append(voice_view(library.get(key), caller, library))
        except Exception:  # removed between the listing and now
            continue
    return VoiceList(voices=voices)


@router.get("/voices/{key}", response_model=Voice, summary="One voice: speakers, family, encoder, extras",
            responses=errors(401, 403, 404))
def get_voice(key: str, request: Request, caller: Caller = Depends(require("read"))) -> Voice:
    ctx = request.app.state.ctx
    return voice_view(_visible_entry(ctx, key, caller), caller, ctx.library)


UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": [VOICE_FILE_FIELD],
    "properties": {
        VOICE_FILE_FIELD: {"type": "array", "items": {"type": "string", "format": "binary"},
                           "description": "The voice's files: a G_*.pth (or ONNX export, or RVC .pth) with its "
                                          "config.json, optionally a cluster/index file, content encoder or "
                                          "diffusion model_*.pt + config.yaml"},
        VOICE_NAME_FIELD: {"type": "string", "description": "A name to show (optional)"}}}}}}}


@router.post("/voices", status_code=201, response_model=Voice, summary="Upload a voice (multipart)",
             description="The files are checked as the page checks them (safe loaders; nothing in a file runs). "
                         "The caller owns the upload.", responses=errors(400, 401, 403, 413),
             openapi_extra=UPLOAD_BODY)
async def upload_voice(request: Request, caller: Caller = Depends(require("voices"))) -> Voice:
    ctx = request.app.state.ctx
    library = ctx.library
    limits = FormLimits(max_file_bytes=ctx.settings.max_file_size, max_total_bytes=library.budget.max_bytes,
                        max_files=MAX_VOICE_FILES, file_fields=(VOICE_FILE_FIELD,))
    form = await receive_form(request, ctx.incoming_dir / uuid.uuid4().hex, limits)
    try:
        unknown = sorted(set(form.fields) - {VOICE_NAME_FIELD})
        if unknown:
            raise problem(codes.UNKNOWN_FIELD, f"Unknown form field(s): {', '.join(unknown)}; send '"
                          f"{VOICE_FILE_FIELD}' (files) and optionally '{VOICE_NAME_FIELD}'.", 400)
        if not form.files:
            raise problem(codes.BAD_REQUEST, f"No files: send the voice's files as '{VOICE_FILE_FIELD}'.", 400)
        entry = await run_in_threadpool(library.add_upload, [f.path for f in form.files], caller.owner,
                                        form.fields.get(VOICE_NAME_FIELD, ""))
        await run_in_threadpool(_share, ctx, entry)
    finally:
        form.remove()
    return voice_view(entry, caller, library)


@router.delete("/voices/{key}", response_model=Deleted, summary="Delete an uploaded voice of the caller's",
               responses=errors(401, 403, 404))
def delete_voice(key: str, request: Request, caller: Caller = Depends(require("voices"))) -> Deleted:
    library = request.app.state.ctx.library
    entry = _visible_entry(request.app.state.ctx, key, caller)
    if not entry.uploaded:
        raise problem(codes.FORBIDDEN, f"'{key}' is a voice folder of the server, not an upload; it cannot be "
                      "deleted through the API.", 403)
    if not (caller.admin or library.upload_owned_by(key, caller.owner)):
        raise problem(codes.FORBIDDEN, f"The voice '{key}' was uploaded by someone else.", 403)
    library.remove_upload(key)
    _unshare(request.app.state.ctx, key)
    return Deleted(deleted=key)
