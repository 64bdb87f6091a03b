"""Upload checks on a real API server with a 1 MB file limit: too large -> 413 file_too_large, answered before the
body is all sent (the server reads it as a stream); not audio -> unsupported_audio; bad options; and voices:
upload (the page's checks), listed to its owner only, deleted by its owner only."""
from __future__ import annotations

import json
import socket
import uuid

import pytest
from api_support import ROOT, STARTER_KEY, error_of, submit

from svc_core.api.tokens import TokenStore

LIMIT = 1024 * 1024  # --max-file-size of the server under test
RECV_GUARD_SECONDS = 60  # hang guard for one socket read


@pytest.fixture(scope="module")
def server(make_api, tmp_path_factory):
    srv = make_api(tmp_path_factory.mktemp("uploads") / "work", max_file_size=LIMIT)
    yield srv
    srv.stop()


def _raw_upload(url: str, declared_length: int | None, send_bytes: int) -> bytes:
    """POST /conversions by hand: headers, then only `send_bytes` of the file part (never the whole body), then
    read the answer. Chunked transfer when `declared_length` is None."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"options\"\r\n\r\n{{\"model\": \"starter\"}}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"big.wav\"\r\n"
            "Content-Type: audio/wav\r\n\r\n").encode()
    length = f"Content-Length: {declared_length}\r\n" if declared_length else "Transfer-Encoding: chunked\r\n"
    request = (f"POST /api/v1/conversions HTTP/1.1\r\nHost: {host}:{port}\r\n{length}"
               f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n").encode()
    with socket.create_connection((host, int(port)), timeout=RECV_GUARD_SECONDS) as sock:
        sock.sendall(request)
        body = head + b"\0" * send_bytes
        if declared_length:
            sock.sendall(body)
        else:
            for start in range(0, len(body), 64 * 1024):
                piece = body[start:start + 64 * 1024]
                sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    return answer


def _status_and_code(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    if b"chunked" in head.lower():
        body = body.split(b"\r\n", 1)[1]
    return status, json.loads(body[: body.rindex(b"}") + 1])["error"]["code"]


def test_too_large_refused_while_streaming(server):
    # chunked: no size up front; the server stops at the limit though the client is still "sending"
    status, code = _status_and_code(_raw_upload(server.url, None, LIMIT + 256 * 1024))
    assert (status, code) == (413, "file_too_large")
    # a declared length over the limit: refused before any of the body is read (only 1 KB of 8 MB is sent)
    status, code = _status_and_code(_raw_upload(server.url, 8 * LIMIT, 1024))
    assert (status, code) == (413, "file_too_large")
    # a normal client with a whole too-large file
    with server.client() as c:
        r = c.post("/conversions", files={"audio": ("big.wav", b"\0" * (LIMIT + 1), "audio/wav")},
                   data={"options": json.dumps({"model": STARTER_KEY})})
        assert r.status_code == 413 and error_of(r) == "file_too_large"
    assert not any((server.work_dir / "api-incoming").iterdir())  # nothing left behind


def test_not_audio_and_bad_options(server, clip, tmp_path):
    garbage = tmp_path / "noise.wav"
    garbage.write_bytes(b"this is not a wav file at all" * 100)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with server.client() as c:
        for path in (garbage, text):
            r = submit(c, path)
            assert r.status_code == 400 and error_of(r) == "unsupported_audio", r.text
        r = c.post("/conversions", files={"audio": ("a.wav", clip.read_bytes())}, data={"options": "{not json"})
        assert r.status_code == 400 and error_of(r) == "bad_request"
        r = submit(c, clip, {"model": STARTER_KEY, "transpose": 500})
        assert r.status_code == 400 and error_of(r) == "invalid_option"
        r = submit(c, clip, {"model": STARTER_KEY, "no_such_option": 1})
        assert r.status_code == 400 and error_of(r) == "unknown_field"
        r = submit(c, clip, {"model": "no-such-voice"})
        assert r.status_code == 404 and error_of(r) == "voice_not_found"
        r = c.post("/conversions", files={"other": ("a.wav", clip.read_bytes())}, data={"options": "{}"})
        assert r.status_code == 400 and error_of(r) == "unknown_field"
        assert c.get("/jobs").json() == {"jobs": []}  # nothing was stored for a bad request


def test_voice_upload_owned_and_deleted_by_its_owner(api):
    server = api  # the default file limit (the starter voice's model file is 8 MB)
    tokens = TokenStore.in_work_dir(server.work_dir)
    alice, bob = tokens.create("alice", ["read", "voices"]), tokens.create("bob", ["read", "voices"])
    starter = ROOT / "voices" / "starter"
    files = [("files", (name, (starter / name).read_bytes(), "application/octet-stream"))
             for name in ("W_5000.pth", "config.json")]
    with server.client(alice) as a, server.client(bob) as b:
        r = a.post("/voices", files=files, data={"name": "alice voice"})
        assert r.status_code == 201, r.text
        voice = r.json()
        assert voice["uploaded"] and voice["mine"] and SPEAKER_NAMES <= set(voice["speakers"])
        key = voice["key"]
        assert key in [v["key"] for v in a.get("/voices").json()["voices"]]
        assert key not in [v["key"] for v in b.get("/voices").json()["voices"]]
        r = b.get(f"/voices/{key}")
        assert r.status_code == 404 and error_of(r) == "voice_not_found"
        r = b.delete(f"/voices/{key}")
        assert r.status_code == 404 and error_of(r) == "voice_not_found"
        r = a.delete(f"/voices/{STARTER_KEY}")
        assert r.status_code == 403 and error_of(r) == "forbidden"
        bad = a.post("/voices", files=[("files", ("G_1.pth", b"not a checkpoint", "application/octet-stream")),
                                       ("files", ("config.json", b"{}", "application/json"))])
        assert bad.status_code == 400 and error_of(bad) in ("model_error", "unsafe_file"), bad.text
        assert a.delete(f"/voices/{key}").json() == {"deleted": key}
        assert a.get(f"/voices/{key}").status_code == 404


SPEAKER_NAMES = {"flite_slt"}
