"""The API mounted beside the page: the real Gradio app (build_app + launch_kwargs) serves the page and /api/v1 on
one port; with --auth, the page's login cookie opens the API (and the page and Live routes still need it), and
API tokens work too."""
from __future__ import annotations

import httpx
import pytest
from api_support import STARTER_KEY, error_of, submit, wait_final

from svc_core.api.tokens import TokenStore
from svc_core.ui import offline

offline.apply()

USER, PASSWORD = "singer", "s3cret"


def start_page(tmp, **overrides):
    from app_process import free_port
    from svc_core.ui.server import build_app, launch_kwargs
    from svc_core.ui.settings import STARTER_VOICES, AppSettings

    settings = AppSettings(port=free_port(), models_dir=tmp / "models", work_dir=tmp / "work", quiet=True,
                           shipped_voices=(STARTER_VOICES,), threads="1", **overrides).resolve()
    demo, state = build_app(settings)
    _, url, _ = demo.launch(prevent_thread_lock=True, **launch_kwargs(settings, state))
    return demo, state, url.rstrip("/") + "/"


@pytest.fixture
def page(tmp_path):
    demo, state, url = start_page(tmp_path)
    yield url, state
    demo.close()
    state.close()


@pytest.fixture
def page_with_login(tmp_path):
    demo, state, url = start_page(tmp_path, auth=((USER, PASSWORD),))
    yield url, state
    demo.close()
    state.close()


def test_page_and_api_on_one_port(page, clip):
    url, _ = page
    assert "<html" in httpx.get(url, timeout=60).text.lower()
    assert httpx.get(url + "config", timeout=60).status_code == 200
    with httpx.Client(base_url=url + "api/v1", timeout=60) as c:
        assert c.get("/health").json()["auth_required"] is False
        job = wait_final(c, submit(c, clip).json()["id"])
        assert job["status"] == "done" and job["owner"] == "local"
        assert c.get(f"/jobs/{job['id']}/results/{job['results'][0]['name']}").status_code == 200
        r = c.get("/nothing")
        assert r.status_code == 404 and error_of(r) == "not_found"


def test_login_cookie_opens_the_api(page_with_login, clip):
    url, state = page_with_login
    api = url + "api/v1"
    refused = httpx.get(api + "/voices", timeout=60)
    assert refused.status_code == 401 and error_of(refused) == "unauthorized"
    assert httpx.get(url + "config", timeout=60).status_code == 401  # the page needs its login as before
    assert httpx.get(api + "/health", timeout=60).json()["auth_required"] is True
    bad = httpx.post(url + "login", data={"username": USER, "password": "wrong"}, timeout=60)
    assert bad.status_code != 200
    with httpx.Client(timeout=60) as browser:
        login = browser.post(url + "login", data={"username": USER, "password": PASSWORD})
        assert login.status_code == 200
        assert browser.get(url + "config").status_code == 200  # the page works with the cookie
        assert browser.get(url + "live/voices").status_code == 200
        voices = browser.get(api + "/voices")
        assert voices.status_code == 200 and STARTER_KEY in [v["key"] for v in voices.json()["voices"]]
        with open(clip, "rb") as f:
            r = browser.post(api + "/conversions", files={"audio": (clip.name, f, "audio/wav")},
                             data={"options": '{"model": "starter"}'})
        assert r.status_code == 202, r.text
        job = r.json()
        assert job["owner"] == f"page:{USER}"
        assert browser.get(f"{api}/jobs/{job['id']}").json()["owner"] == f"page:{USER}"
    token = TokenStore.in_work_dir(state.work_dir).create("robot", ["read"])
    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {token}"}, timeout=60) as robot:
        assert robot.get("/voices").status_code == 200
        r = robot.get(f"/jobs/{job['id']}")  # the page user's job is not the robot's
        assert r.status_code == 404 and error_of(r) == "job_not_found"
    with httpx.Client(base_url=api, timeout=60) as anon:
        r = anon.get(f"/jobs/{job['id']}", headers={"Cookie": "access-token-forged=abc"})
        assert r.status_code == 401
