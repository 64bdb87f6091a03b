"""A real demo server (in this process) on a tiny upstream-layout voice, and a record of every outbound
connection this process attempts (Python audit hooks), for the web tests.

The voice: a vec256l9 so-vits model with 3 speakers (random weights, upstream file layout) in
<tmp>/models/demo-voice/, the ContentVec-layout encoder in <tmp>/pretrain/ ($SVC_PRETRAIN_DIR), and a 2 s sung
example clip in <tmp>/examples/.
"""
from __future__ import annotations

import ipaddress
import os
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from svc_core.ui import offline

offline.apply()  # before gradio / gradio_client are imported anywhere in this process

# ------------------------------------------------------------------ outbound connection record
CONNECTIONS: list[tuple[str, str]] = []  # (event, host) for every socket.connect / getaddrinfo
_LOCK = threading.Lock()


def _host_of(event: str, args: tuple) -> str | None:
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and address:
            return str(address[0])
        return None  # AF_UNIX paths
    if event == "socket.getaddrinfo":
        return None if args[0] is None else (args[0].decode() if isinstance(args[0], bytes) else str(args[0]))
    return None


def _audit(event: str, args: tuple) -> None:
    if event in ("socket.connect", "socket.getaddrinfo"):
        host = _host_of(event, args)
        if host is not None:
            with _LOCK:
                CONNECTIONS.append((event, host))


sys.addaudithook(_audit)


def is_local(host: str) -> bool:
    if host in ("localhost", "", "0.0.0.0"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def outbound_connections(since: int = 0) -> list[tuple[str, str]]:
    """Non-loopback connection attempts recorded after the first `since` records."""
    with _LOCK:
        return [(event, host) for event, host in CONNECTIONS[since:] if not is_local(host)]


def record_count() -> int:
    with _LOCK:
        return len(CONNECTIONS)


# ------------------------------------------------------------------ voice, examples, server
@dataclass
class WebVoice:
    root: Path
    models_dir: Path
    examples_dir: Path
    clip: Path
    model: str = "demo-voice"
    speakers: tuple[str, ...] = ("alto", "tenor", "bass")


@pytest.fixture(scope="session")
def web_voice(tmp_path_factory) -> Iterator[WebVoice]:
    import soundfile as sf

    from audio_factories import sung_phrase
    from encoder_factories import make_contentvec_checkpoint
    from factories import make_upstream_checkpoint

    root = tmp_path_factory.mktemp("web")
    models = root / "models"
    make_upstream_checkpoint(models / "demo-voice", speech_encoder="vec256l9", n_speakers=3, seed=7,
                             speakers={"alto": 0, "tenor": 1, "bass": 2})
    pretrain = root / "pretrain"
    make_contentvec_checkpoint(pretrain / "checkpoint_best_legacy_500.pt", final_dim=256, seed=3)
    previous = os.environ.get("SVC_PRETRAIN_DIR")
    os.environ["SVC_PRETRAIN_DIR"] = str(pretrain)
    examples = root / "examples"
    examples.mkdir()
    clip = examples / "sung_phrase.wav"
    sf.write(clip, sung_phrase(2.0, gap_every=1.0, gap=0.6), 44100, subtype="PCM_16")
    yield WebVoice(root, models, examples, clip)
    if previous is None:
        os.environ.pop("SVC_PRETRAIN_DIR", None)
    else:
        os.environ["SVC_PRETRAIN_DIR"] = previous


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    demo: object
    state: object


def start_server(voice: WebVoice, work_dir: Path, **overrides) -> Server:
    """Build the app on the test voice and serve it on a free port of 127.0.0.1 (in a background thread)."""
    from svc_core.ui.server import build_app, launch_kwargs
    from svc_core.ui.settings import AppSettings

    overrides.setdefault("examples_dir", voice.examples_dir)
    overrides.setdefault("shipped_voices", ())  # the test voice only (the starter voices have their own test)
    settings = AppSettings(port=free_port(), models_dir=voice.models_dir, work_dir=work_dir, quiet=True,
                           **overrides).resolve()
    demo, state = build_app(settings)
    _, url, _ = demo.launch(prevent_thread_lock=True, **launch_kwargs(settings, state))
    return Server(url.rstrip("/") + "/", demo, state)


@pytest.fixture(scope="session")
def make_server():
    """start_server, for tests that need a server with their own settings (they close it)."""
    return start_server


_FIRST_RECORD: list[int] = []  # where the record stood when the first web server started


@pytest.fixture(scope="session")
def outbound():
    """() -> the non-loopback connections this process attempted since the web servers started."""
    return lambda: outbound_connections(_FIRST_RECORD[0] if _FIRST_RECORD else 0)


@pytest.fixture(scope="session")
def server(web_voice, tmp_path_factory):
    _FIRST_RECORD.append(record_count())
    srv = start_server(web_voice, tmp_path_factory.mktemp("work"), concurrency=2, queue_size=8)
    yield srv
    srv.demo.close()


def _client_for(srv: Server):
    """A gradio_client Client of `srv` (offline, downloads into its work folder)."""
    from gradio_client import Client

    return Client(srv.url, verbose=False, analytics_enabled=False,
                  download_files=str(Path(srv.state.work_dir) / "client-downloads"))


@pytest.fixture(scope="session")
def client(server):
    return _client_for(server)


@pytest.fixture(scope="session")
def client_for():
    """server -> a gradio_client Client of it (offline, downloads into the server's work folder)."""
    return _client_for


@pytest.fixture(scope="session")
def voices_server(web_voice, tmp_path_factory):
    """(tag, populate(models_dir), clip_gain) -> a started server (concurrency 1, queue 4) on a models folder of
    its own (demo-voice copied in, then `populate`) with an example clip of its own (Gradio's file cache is per
    content) as `server.clip`; the caller closes it (server.demo.close())."""
    def start(tag: str, populate, gain: float = 0.8) -> Server:
        import dataclasses
        import shutil

        import soundfile as sf
        from audio_factories import sung_phrase

        root = tmp_path_factory.mktemp(tag)
        models = root / "models"
        shutil.copytree(web_voice.models_dir / "demo-voice", models / "demo-voice")
        populate(models)
        examples = root / "examples"
        examples.mkdir()
        clip = examples / f"{tag}_phrase.wav"
        sf.write(clip, gain * sung_phrase(2.0, gap_every=1.0, gap=0.6), 44100, subtype="PCM_16")
        voice = dataclasses.replace(web_voice, models_dir=models, examples_dir=examples, clip=clip)
        srv = start_server(voice, root / "work", concurrency=1, queue_size=4)
        srv.clip = clip
        return srv

    return start


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium through Playwright, headless (tests/browser_support.py); skips when it is not installed."""
    from browser_support import launched_chromium

    yield from launched_chromium()
