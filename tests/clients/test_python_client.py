"""svc_core.SvcClient against a real API server on the starter voice: convert end to end (the file is audio of the
clip's length), follow events, the polling fallback of wait, cancel, idempotent submits, voices upload/delete, and
every error raised as ApiError with the server's code and status."""
from __future__ import annotations

import httpx
import pytest
import soundfile as sf
from api_support import CLIP_SECONDS, JOB_GUARD_SECONDS, ROOT, SPEAKER, STARTER_KEY, start_api

import svc_core
from svc_core.api.tokens import TokenStore
from svc_core.client import ApiError, JobTimeout, ServerEvent, SvcClient, _EventBuilder

STARTER = {"model": STARTER_KEY, "speaker": SPEAKER}
LENGTH_TOLERANCE = 0.05  # seconds: the converted file's length against the clip's
STATUS_ORDER = ("queued", "running", "done")


def audio_seconds(path) -> float:
    info = sf.info(str(path))
    assert info.frames > 0 and info.channels >= 1
    return info.frames / info.samplerate


def test_exported_from_the_package():
    assert svc_core.SvcClient is SvcClient and svc_core.ApiError is ApiError
    assert {"SvcClient", "ApiError"} <= set(svc_core.__all__)


def test_server_voices_and_url_forms(api, api_url):
    for base in (api_url, api_url + "/", api.url):  # the server root or its /api/v1 root
        with SvcClient(base) as client:
            assert client.health() == {"status": "ok", "jobs": "embedded", "auth_required": False}
    with SvcClient(api_url) as client:
        assert client.version()["api"] == "v1"
        voices = {v["key"]: v for v in client.voices()}
        assert SPEAKER in voices[STARTER_KEY]["speakers"]
        assert client.voice(STARTER_KEY)["speakers"] == voices[STARTER_KEY]["speakers"]


def test_convert_writes_audio_of_the_clips_length(api_url, clip, tmp_path):
    out = tmp_path / "out.wav"
    with SvcClient(api_url) as client:
        job = client.convert(clip, out, timeout=JOB_GUARD_SECONDS, transpose=2, **STARTER)
        assert job["status"] == "done" and job["error"] is None
        assert job["params"]["transpose"] == 2 and job["params"]["model"] == STARTER_KEY
        assert job["timings"]["total"] > 0
        assert abs(audio_seconds(out) - CLIP_SECONDS) < LENGTH_TOLERANCE
        assert not list(tmp_path.glob("*.part"))
        assert job["id"] in [j["id"] for j in client.jobs()]

        # download into a folder keeps the server's name, and the bytes are the same
        name = job["results"][0]["name"]
        again = client.download(job["id"], name, tmp_path)
        assert again == tmp_path / name and again.read_bytes() == out.read_bytes()


def test_events_follow_a_job_to_its_end(api_url, clip):
    with SvcClient(api_url) as client:
        job = client.submit_conversion(clip, **STARTER)
        events = list(client.events(job["id"]))
    assert events and all(e.event == "job" and e.id == job["id"] for e in events)
    statuses = [e.job["status"] for e in events]
    assert statuses[-1] == "done"
    assert statuses == sorted(statuses, key=STATUS_ORDER.index)  # never back to an earlier status
    progress = [e.job["progress"] for e in events]
    assert all(0.0 <= p <= 1.0 for p in progress) and progress[-1] == 1.0


class NoEventsTransport(httpx.BaseTransport):
    """The real server, except that the events endpoint answers 404 like a server without one (a proxy that
    drops streams): `wait` has to poll."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        if request.url.path.endswith("/events"):
            return httpx.Response(404, json={"detail": "Not Found"}, request=request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


class CutDownloadTransport(httpx.BaseTransport):
    """The real server, except that result downloads break after their first bytes (a dropped connection)."""

    class Cut(httpx.SyncByteStream):
        def __iter__(self):
            yield b"RIFF" + b"\0" * 1000
            raise httpx.ReadError("connection dropped")

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if "/results/" in request.url.path:
            return httpx.Response(200, stream=self.Cut(), request=request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_a_broken_download_leaves_no_file(api_url, clip, tmp_path):
    out = tmp_path / "out.wav"
    with SvcClient(api_url, transport=CutDownloadTransport()) as client:
        with pytest.raises(httpx.ReadError):
            client.convert(clip, out, timeout=JOB_GUARD_SECONDS, **STARTER)
    assert list(tmp_path.iterdir()) == []


def test_wait_polls_when_there_is_no_event_stream(api_url, clip):
    transport = NoEventsTransport()
    with SvcClient(api_url, transport=transport) as client:
        job = client.submit_conversion(clip, **STARTER)
        done = client.wait(job["id"], timeout=JOB_GUARD_SECONDS, poll_seconds=0.1)
    assert done["status"] == "done"
    job_path = f"/api/v1/jobs/{job['id']}"
    assert transport.paths.count(job_path + "/events") == 1  # tried once, then polled
    assert transport.paths.count(job_path) >= 1


def test_wait_times_out_with_the_job_still_running(api_url, long_clip):
    with SvcClient(api_url) as client:
        job = client.submit_conversion(long_clip, **STARTER)
        with pytest.raises(JobTimeout) as caught:
            client.wait(job["id"], timeout=0.0)
        assert isinstance(caught.value, TimeoutError) and caught.value.code == "timeout"
        assert caught.value.job["status"] in ("queued", "running")
        client.cancel(job["id"])
        assert client.wait(job["id"], timeout=JOB_GUARD_SECONDS)["status"] == "cancelled"


def test_cancel_a_running_job(api_url, long_clip, tmp_path):
    with SvcClient(api_url) as client:
        job = client.submit_conversion(long_clip, **STARTER)
        for event in client.events(job["id"]):
            if event.job["status"] != "queued":
                break
        assert event.job["status"] == "running", event.job
        cancelled = client.cancel(job["id"])
        assert cancelled["id"] == job["id"] and cancelled["cancel_requested"] in (True, False)
        final = client.wait(job["id"], timeout=JOB_GUARD_SECONDS)
        assert final["status"] == "cancelled" and final["results"] == []
        with pytest.raises(ApiError) as caught:
            client.download(job["id"], "anything.wav", tmp_path / "x.wav")
        assert caught.value.code == "result_not_found" and caught.value.status == 404
        assert not (tmp_path / "x.wav").exists() and not (tmp_path / "x.wav.part").exists()


def test_convert_raises_the_jobs_own_error_when_cancelled(api_url, long_clip, tmp_path):
    """convert() on a job someone else cancels raises ApiError with the job's code and status 0."""
    import threading

    with SvcClient(api_url) as client:
        key = "cancel-me-1"

        def cancel_when_started() -> None:
            with SvcClient(api_url) as other:
                job = other.submit_conversion(long_clip, idempotency_key=key, **STARTER)  # the same job
                for event in other.events(job["id"]):
                    if event.job["status"] != "queued":
                        break
                other.cancel(job["id"])

        canceller = threading.Thread(target=cancel_when_started)
        canceller.start()
        with pytest.raises(ApiError) as caught:
            client.convert(long_clip, tmp_path / "out.wav", idempotency_key=key, timeout=JOB_GUARD_SECONDS,
                           **STARTER)
        canceller.join()
    assert caught.value.code == "cancelled" and caught.value.status == 0
    assert not (tmp_path / "out.wav").exists()


def test_idempotency_key_returns_the_first_job(api_url, clip):
    with SvcClient(api_url) as client:
        first = client.submit_conversion(clip, idempotency_key="clip-001", **STARTER)
        second = client.submit_conversion(clip, idempotency_key="clip-001", **STARTER)
        third = client.submit_conversion(clip, idempotency_key="clip-002", **STARTER)
        assert second["id"] == first["id"] and third["id"] != first["id"]
        for job in (first, third):
            assert client.wait(job["id"], timeout=JOB_GUARD_SECONDS)["status"] == "done"


@pytest.mark.parametrize("options, code, status", [
    ({**STARTER, "bogus": 1}, "unknown_field", 400),
    ({**STARTER, "noise_scale": 9}, "invalid_option", 400),
    ({"model": "no-such-voice"}, "voice_not_found", 404),
    ({**STARTER, "queue": "tpu"}, "invalid_option", 400),
])
def test_bad_submits_raise_api_errors(api_url, clip, options, code, status):
    with SvcClient(api_url) as client, pytest.raises(ApiError) as caught:
        client.submit_conversion(clip, **options)
    assert (caught.value.code, caught.value.status) == (code, status)
    assert caught.value.message and caught.value.message in str(caught.value)


def test_unknown_job_and_not_audio(api_url, tmp_path):
    not_audio = tmp_path / "notes.wav"
    not_audio.write_bytes(b"this is not a wav file at all" * 10)
    with SvcClient(api_url) as client:
        for call in (client.job, client.cancel, lambda job_id: list(client.events(job_id))):
            with pytest.raises(ApiError) as caught:
                call("0" * 32)
            assert (caught.value.code, caught.value.status) == ("job_not_found", 404)
        with pytest.raises(ApiError) as caught:
            client.submit_conversion(not_audio, **STARTER)
        assert caught.value.code == "unsupported_audio" and caught.value.status == 400


def test_tokens_upload_and_delete_a_voice(tmp_path_factory, clip):
    server = start_api(tmp_path_factory.mktemp("client-auth") / "work")
    try:
        url = server.url.removesuffix("/api/v1")
        tokens = TokenStore.in_work_dir(server.work_dir)
        maker = tokens.create("maker", ["read", "convert", "voices"])
        reader = tokens.create("reader", ["read"])
        with SvcClient(url) as anonymous, pytest.raises(ApiError) as caught:
            anonymous.voices()
        assert (caught.value.code, caught.value.status) == ("unauthorized", 401)
        with SvcClient(url) as anonymous:
            assert anonymous.health()["auth_required"] is True  # health needs no token

        with SvcClient(url, token=reader) as client, pytest.raises(ApiError) as caught:
            client.submit_conversion(clip, **STARTER)
        assert (caught.value.code, caught.value.status) == ("forbidden", 403)

        starter = ROOT / "voices" / "starter"
        with SvcClient(url, token=maker) as client:
            voice = client.upload_voice([starter / "W_5000.pth", starter / "config.json"], name="my copy")
            assert voice["uploaded"] and voice["mine"] and SPEAKER in voice["speakers"]
            assert voice["key"] in [v["key"] for v in client.voices()]
            job = client.submit_conversion(clip, model=voice["key"], speaker=SPEAKER)
            assert client.wait(job["id"], timeout=JOB_GUARD_SECONDS)["status"] == "done"
            assert client.delete_voice(voice["key"]) == {"deleted": voice["key"]}
            with pytest.raises(ApiError) as caught:
                client.voice(voice["key"])
            assert caught.value.code == "voice_not_found"
            with pytest.raises(ApiError) as caught:
                client.delete_voice(STARTER_KEY)
            assert (caught.value.code, caught.value.status) == ("forbidden", 403)

            tokens.revoke("maker")
            with pytest.raises(ApiError) as caught:
                client.jobs()
            assert (caught.value.code, caught.value.status) == ("token_revoked", 401)
    finally:
        server.stop()


def test_event_parser_reads_the_sse_format():
    builder = _EventBuilder()
    lines = ["event: job", "id: 7", 'data: {"id": "7", "status": "running"}', "", ": keep-alive", "",
             "data: plain", "data: text", ""]
    events = [e for e in (builder.feed(line) for line in lines) if e is not None]
    # an unnamed event is "message"; the last event id carries over (as in the SSE spec); comments are skipped
    assert events == [ServerEvent("job", {"id": "7", "status": "running"}, "7"),
                      ServerEvent("message", "plain\ntext", "7")]
    assert events[0].job == {"id": "7", "status": "running"} and events[1].job is None
