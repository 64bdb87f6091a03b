"""SvcClient against the API mounted beside the page (`python app.py`'s server: the real Gradio app on one port):
the client takes the page's URL, follows a job's server-sent events through the page's app and downloads audio of
the clip's length."""
from __future__ import annotations

import pytest
import soundfile as sf
from api_support import CLIP_SECONDS, JOB_GUARD_SECONDS, SPEAKER, STARTER_KEY

from svc_core.client import SvcClient
from svc_core.ui import offline

offline.apply()

LENGTH_TOLERANCE = 0.05  # seconds


@pytest.fixture
def page_url(tmp_path):
    """The page's server (build_app + launch_kwargs, as app.py starts it) on the starter voice; its root URL."""
    from app_process import free_port
    from svc_core.ui.server import build_app, launch_kwargs
    from svc_core.ui.settings import STARTER_VOICES, AppSettings

    settings = AppSettings(port=free_port(), models_dir=tmp_path / "models", work_dir=tmp_path / "work", quiet=True,
                           shipped_voices=(STARTER_VOICES,), threads="1").resolve()
    demo, state = build_app(settings)
    _, url, _ = demo.launch(prevent_thread_lock=True, **launch_kwargs(settings, state))
    yield url.rstrip("/")
    demo.close()
    state.close()


def test_client_through_the_page_server(page_url, clip, tmp_path):
    with SvcClient(page_url) as client:
        assert client.health()["jobs"] == "embedded"
        job = client.submit_conversion(clip, model=STARTER_KEY, speaker=SPEAKER)
        events = list(client.events(job["id"]))
        assert events[-1].job["status"] == "done"  # the event stream passes through the page's app
        done = client.wait(job["id"], timeout=JOB_GUARD_SECONDS)
        out = client.download(done["id"], done["results"][0]["name"], tmp_path / "out.wav")
    info = sf.info(str(out))
    assert abs(info.frames / info.samplerate - CLIP_SECONDS) < LENGTH_TOLERANCE
