"""Token auth on a real API server: open while loopback with no tokens; once a token exists, missing, wrong, revoked
and wrong-scope credentials are refused with their codes; errors of routing and validation keep the JSON shape."""
from __future__ import annotations

import pytest
from api_support import STARTER_KEY, error_of, submit

from svc_core.api.tokens import TokenStore


@pytest.fixture(scope="module")
def server(make_api, tmp_path_factory):
    srv = make_api(tmp_path_factory.mktemp("auth") / "work")
    yield srv
    srv.stop()


def test_open_without_tokens_then_closed_once_one_exists(server):
    with server.client() as c:
        health = c.get("/health").json()
        assert health == {"status": "ok", "jobs": "embedded", "auth_required": False}
        voices = c.get("/voices")
        assert voices.status_code == 200
        assert STARTER_KEY in [v["key"] for v in voices.json()["voices"]]

        tokens = TokenStore.in_work_dir(server.work_dir)
        reader = tokens.create("reader", ["read"])
        writer = tokens.create("writer", ["read", "convert"])
        assert reader not in tokens.path.read_text()  # only hashes at rest

        assert c.get("/health").json()["auth_required"] is True  # the running server sees the new file
        missing = c.get("/voices")
        assert missing.status_code == 401 and error_of(missing) == "unauthorized"
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = c.get("/voices", headers={"Authorization": "Bearer svc_" + "x" * 40})
        assert wrong.status_code == 401 and error_of(wrong) == "unauthorized"
        assert error_of(c.get("/voices", headers={"Authorization": "Basic abc"})) == "unauthorized"

    with server.client(reader) as c:
        assert c.get("/voices").status_code == 200
        assert c.get("/version").json()["api"] == "v1"
        refused = c.post("/conversions", files={"audio": ("a.wav", b"RIFF", "audio/wav")}, data={"options": "{}"})
        assert refused.status_code == 403 and error_of(refused) == "forbidden"
        refused = c.delete(f"/voices/{STARTER_KEY}")
        assert refused.status_code == 403 and error_of(refused) == "forbidden"

    with server.client(writer) as c:
        assert c.get("/jobs").json() == {"jobs": []}
        tokens.revoke("writer")
        revoked = c.get("/jobs")
        assert revoked.status_code == 401 and error_of(revoked) == "token_revoked"


def test_scope_checked_before_the_body_is_read(server, clip):
    token = TokenStore.in_work_dir(server.work_dir).create("listener", ["read"])
    with server.client(token) as c:
        assert error_of(submit(c, clip)) == "forbidden"
        assert error_of(submit(c, clip, field="song", path="/covers")) == "forbidden"


def test_routing_and_validation_errors_are_json(server):
    token = TokenStore.in_work_dir(server.work_dir).create("admin", ["admin"])
    with server.client(token) as c:
        r = c.get("/no/such/thing")
        assert r.status_code == 404 and error_of(r) == "not_found"
        r = c.put("/voices")
        assert r.status_code == 405 and error_of(r) == "method_not_allowed"
        r = c.get("/jobs", params={"limit": 0})
        assert r.status_code == 400 and error_of(r) == "bad_request"
        assert "limit" in r.json()["error"]["message"]
        r = c.get("/jobs/0123456789abcdef0123456789abcdef")
        assert r.status_code == 404 and error_of(r) == "job_not_found"
        r = c.get("/voices/no-such-voice")
        assert r.status_code == 404 and error_of(r) == "voice_not_found"
        r = c.post("/conversions", content=b"{}", headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and error_of(r) == "bad_request"


def test_tokens_command(tmp_path, capsys):
    from svc_core.cli import main

    work = str(tmp_path)
    assert main(["tokens", "--work-dir", work, "create", "--name", "ci-bot", "--scope", "read",
                 "--scope", "convert"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("svc_") and len(token) == 44
    store = TokenStore.in_work_dir(tmp_path)
    assert store.check(token).record.name == "ci-bot" and token not in store.path.read_text()
    assert main(["tokens", "--work-dir", work, "create", "--name", "ci-bot"]) == 2  # names are unique
    assert main(["tokens", "--work-dir", work, "list"]) == 0
    assert capsys.readouterr().out.split() == ["ci-bot", "read,convert", "active"]
    assert main(["tokens", "--work-dir", work, "revoke", "ci-bot"]) == 0
    assert store.check(token).record.revoked is not None
    assert main(["tokens", "--work-dir", work, "revoke", "nobody"]) == 2
