"""A small HTTP client for the REST API (/api/v1): voices, conversions, covers, jobs, their events and results.

    from svc_core import SvcClient
    client = SvcClient("http://127.0.0.1:7860", token="svc_...")
    job = client.convert("clip.wav", "out.wav", model="starter", speaker="flite_slt", transpose=2)

Every error answer raises `ApiError(code, message, status)` with the server's stable code (svc_core/jobs/errors.py);
a job that ends failed or cancelled raises it too from `convert`. Only httpx is needed (no Gradio, no torch).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

import httpx

from .errors import SvcError

API_PREFIX = "/api/v1"
DEFAULT_TIMEOUT = 30.0  # seconds for one request (connect, read, write)
DEFAULT_WAIT = 600.0  # seconds `wait` / `convert` wait for a job to finish
POLL_SECONDS = 0.5  # interval of the polling fallback of `wait`
SSE_READ_SECONDS = 30.0  # the events stream's read timeout: the stream is re-opened (or polled) after this
CHUNK_BYTES = 1 << 16  # download chunk
FINAL_STATUSES = ("done", "failed", "cancelled")  # svc_core.jobs.model.FINAL, repeated to keep this module light
NOT_HTTP = 0  # ApiError.status when the error is a job's own (no HTTP answer said it)


class ApiError(SvcError):
    """An error answer of the API: `code` is stable (svc_core/jobs/errors.py), `message` readable, `status` the
    HTTP status (0 for a job that failed or was cancelled)."""

    def __init__(self, code: str, message: str, status: int = NOT_HTTP) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def __str__(self) -> str:
        where = f"HTTP {self.status}, " if self.status else ""
        return f"{self.message} ({where}{self.code})"


class JobTimeout(ApiError, TimeoutError):
    """`wait` ran out of time before the job finished (the job goes on; cancel it or wait again)."""

    def __init__(self, job_id: str, seconds: float, job: dict[str, Any] | None = None) -> None:
        status = (job or {}).get("status", "unknown")
        super().__init__("timeout", f"Job {job_id} did not finish within {seconds:g} s (it is {status}).")
        self.job = job


@dataclass
class ServerEvent:
    """One server-sent event: its `event` name ("message" when unnamed), `data` (parsed JSON, else the text) and
    `id`."""

    event: str = "message"
    data: Any = None
    id: str | None = None

    @property
    def job(self) -> dict[str, Any] | None:
        """The job record the event carries, if it carries one."""
        data = self.data
        if isinstance(data, dict) and isinstance(data.get("job"), dict):
            data = data["job"]
        return data if isinstance(data, dict) and "status" in data else None


@dataclass
class _EventBuilder:
    """Collects the lines of one SSE event (text/event-stream: blank line ends an event)."""

    event: str = ""
    data: list[str] = field(default_factory=list)
    id: str | None = None

    def feed(self, line: str) -> ServerEvent | None:
        if line == "":
            return self._flush()
        if line.startswith(":"):
            return None  # a comment: keep-alive
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self.event = value
        elif name == "data":
            self.data.append(value)
        elif name == "id":
            self.id = value
        return None

    def _flush(self) -> ServerEvent | None:
        if not self.data and not self.event:
            return None
        text = "\n".join(self.data)
        try:
            data: Any = json.loads(text) if text else None
        except ValueError:
            data = text
        out = ServerEvent(self.event or "message", data, self.id)
        self.event, self.data = "", []
        return out


def api_error(response: httpx.Response) -> ApiError:
    """The ApiError of an error answer: `{"error": {"code", "message"}}`, or a generic one from the status."""
    code, message = f"http_{response.status_code}", response.reason_phrase or "error"
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = str(body["error"].get("code", code))
        message = str(body["error"].get("message", message))
    elif isinstance(body, dict) and "detail" in body:  # a framework answer (e.g. an unknown route)
        message = str(body["detail"])
    return ApiError(code, message, response.status_code)


def _part(value: str) -> str:
    """One path segment, percent-encoded (a result name may hold '+', spaces, ...)."""
    return quote(str(value), safe="")


class SvcClient:
    """The REST API from Python. `base_url` is the server ("http://host:7860") or its API root (".../api/v1");
    `token` an API token (`python -m svc_core tokens create`), sent as `Authorization: Bearer`; `timeout` seconds
    per request; `transport` an httpx transport of your own (retries, a proxy, tests). Proxy variables of the
    environment apply as in httpx."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 transport: httpx.BaseTransport | None = None) -> None:
        root = base_url.rstrip("/")
        self.base_url = root if root.endswith(API_PREFIX) else root + API_PREFIX
        self.timeout = timeout
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, transport=transport)

    # ------------------------------------------------------------------ plumbing
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "SvcClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.is_error:
            raise api_error(response)
        if not response.content:
            return None
        return response.json()

    # ------------------------------------------------------------------ server
    def health(self) -> dict[str, Any]:
        """GET /health (no credentials): {"status": "ok", "jobs": "embedded" | "broker", "auth_required": bool}."""
        return self._request("GET", "/health")

    def version(self) -> dict[str, Any]:
        """GET /version: the package and API versions."""
        return self._request("GET", "/version")

    # ------------------------------------------------------------------ voices
    def voices(self) -> list[dict[str, Any]]:
        """GET /voices: the voices you may use (key, label, speakers, family, uploaded, mine, ...)."""
        body = self._request("GET", "/voices")
        return body["voices"] if isinstance(body, dict) and "voices" in body else body

    def voice(self, key: str) -> dict[str, Any]:
        """GET /voices/{key}: one voice's details."""
        return self._request("GET", f"/voices/{_part(key)}")

    def upload_voice(self, files: list[str | Path], name: str = "") -> dict[str, Any]:
        """POST /voices: a voice's files (checkpoint and config, optional cluster / index / encoder / diffusion
        files) and an optional name to show; returns the voice (you own it)."""
        handles = [open(path, "rb") for path in files]
        try:
            parts = [("files", (Path(path).name, handle)) for path, handle in zip(files, handles)]
            return self._request("POST", "/voices", files=parts, data={"name": name} if name else None)
        finally:
            for handle in handles:
                handle.close()

    def delete_voice(self, key: str) -> dict[str, Any]:
        """DELETE /voices/{key}: one of your own uploads; returns {"deleted": key}."""
        return self._request("DELETE", f"/voices/{_part(key)}")

    # ------------------------------------------------------------------ jobs
    def _submit(self, path: str, field_name: str, file_path: str | Path, options: dict[str, Any],
                idempotency_key: str | None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        with open(file_path, "rb") as handle:
            return self._request("POST", path, headers=headers, data={"options": json.dumps(options)},
                                 files={field_name: (Path(file_path).name, handle)})

    def submit_conversion(self, audio_path: str | Path, idempotency_key: str | None = None,
                          **options: Any) -> dict[str, Any]:
        """POST /conversions: the audio file and the options (`model`, `speaker`, `transpose`, ...); returns the
        queued job. The same `idempotency_key` (per token) returns the first job instead of a new one."""
        return self._submit("/conversions", "audio", audio_path, options, idempotency_key)

    def submit_cover(self, song_path: str | Path, idempotency_key: str | None = None,
                     **options: Any) -> dict[str, Any]:
        """POST /covers: a song and the cover options (`model`, `speaker`, `separator`, `key`, ...); returns the job."""
        return self._submit("/covers", "song", song_path, options, idempotency_key)

    def submit_training(self, dataset_zip: str | Path, idempotency_key: str | None = None,
                        **options: Any) -> dict[str, Any]:
        """POST /trainings: a dataset zip (<speaker>/<clip>.wav) and the training options (`name`, `steps`,
        `batch_size`, `learning_rate`, `eval_interval`, `f0_predictor`, `model_size`); returns the queued job. Once
        done, the result voice.json names the new voice's key (usable in submit_conversion at once)."""
        return self._submit("/trainings", "dataset", dataset_zip, options, idempotency_key)

    def job(self, job_id: str) -> dict[str, Any]:
        """GET /jobs/{id}: status, stage, progress (0..1), eta_seconds, timings, results, error."""
        return self._request("GET", f"/jobs/{_part(job_id)}")

    def jobs(self, limit: int | None = None) -> list[dict[str, Any]]:
        """GET /jobs: your jobs, newest first (at most `limit`; the server's default 50)."""
        body = self._request("GET", "/jobs", params={"limit": limit} if limit else None)
        return body["jobs"] if isinstance(body, dict) and "jobs" in body else body

    def cancel(self, job_id: str) -> dict[str, Any]:
        """POST /jobs/{id}/cancel: a queued job is cancelled at once, a running one at its next check (~0.3 s); a
        finished job is returned as it is."""
        return self._request("POST", f"/jobs/{_part(job_id)}/cancel")

    def events(self, job_id: str, read_timeout: float | None = SSE_READ_SECONDS) -> Iterator[ServerEvent]:
        """GET /jobs/{id}/events: the job's server-sent events as they come, until the server ends the stream
        (after the job finishes). `read_timeout` seconds without a byte raise httpx.ReadTimeout."""
        timeout = httpx.Timeout(self.timeout, read=read_timeout)
        with self._http.stream("GET", f"/jobs/{_part(job_id)}/events", timeout=timeout,
                               headers={"Accept": "text/event-stream"}) as response:
            if response.is_error:
                response.read()
                raise api_error(response)
            builder = _EventBuilder()
            for line in response.iter_lines():
                event = builder.feed(line.rstrip("\r"))
                if event is not None:
                    yield event
            last = builder.feed("")
            if last is not None:
                yield last

    def wait(self, job_id: str, timeout: float = DEFAULT_WAIT, poll_seconds: float = POLL_SECONDS) -> dict[str, Any]:
        """The job once it is done, failed or cancelled: follows its events, and polls GET /jobs/{id} every
        `poll_seconds` when the stream is not available. Raises JobTimeout after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        stream_ok = True
        while True:
            remaining = deadline - time.monotonic()
            if stream_ok and remaining > 0:
                try:
                    for event in self.events(job_id, read_timeout=min(remaining, SSE_READ_SECONDS)):
                        job = event.job
                        if job is not None and job.get("status") in FINAL_STATUSES:
                            break
                        if time.monotonic() >= deadline:
                            break
                except httpx.ReadTimeout:
                    pass  # quiet stream: look at the job, then open it again
                except (httpx.TransportError, httpx.DecodingError):
                    stream_ok = False
                except ApiError as exc:
                    if exc.code == "job_not_found" or exc.status in (401, 403):
                        raise
                    stream_ok = False  # no events endpoint here: poll
            job = self.job(job_id)
            if job.get("status") in FINAL_STATUSES:
                return job
            if time.monotonic() >= deadline:
                raise JobTimeout(job_id, timeout, job)
            time.sleep(min(poll_seconds, max(0.0, deadline - time.monotonic())))

    def download(self, job_id: str, name: str, dest: str | Path) -> Path:
        """GET /jobs/{id}/results/{name} into `dest` (a file, or a folder to put `name` in); returns the file.
        Written to `<dest>.part` first and renamed when complete: a broken transfer leaves no file behind."""
        target = Path(dest)
        if target.is_dir():
            target = target / name
        partial = target.with_name(target.name + ".part")
        with self._http.stream("GET", f"/jobs/{_part(job_id)}/results/{_part(name)}") as response:
            if response.is_error:
                response.read()
                raise api_error(response)
            try:
                with open(partial, "wb") as out:
                    for chunk in response.iter_bytes(CHUNK_BYTES):
                        out.write(chunk)
                partial.replace(target)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
        return target

    # ------------------------------------------------------------------ all in one
    def convert(self, audio_path: str | Path, dest: str | Path, timeout: float = DEFAULT_WAIT,
                idempotency_key: str | None = None, **options: Any) -> dict[str, Any]:
        """Submit a conversion, wait for it, download its audio to `dest`; returns the finished job. A job that
        fails or is cancelled raises ApiError with the job's own code (status 0)."""
        job = self.submit_conversion(audio_path, idempotency_key=idempotency_key, **options)
        job = self.wait(job["id"], timeout=timeout)
        raise_for_job(job)
        results = job.get("results") or []
        if not results:
            raise ApiError("result_not_found", f"Job {job['id']} finished without a result file.")
        audio = next((r for r in results if str(r.get("media_type", "")).startswith("audio/")), results[0])
        self.download(job["id"], audio["name"], dest)
        return job


def raise_for_job(job: dict[str, Any]) -> None:
    """ApiError (status 0) for a job that failed or was cancelled; nothing for one that is done."""
    status = job.get("status")
    if status == "done":
        return
    error = job.get("error") or {}
    code = error.get("code") or ("cancelled" if status == "cancelled" else "internal")
    message = error.get("message") or f"Job {job.get('id')} is {status}."
    raise ApiError(code, message)
