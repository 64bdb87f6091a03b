"""The ssh tunnel with real components: a throwaway sshd on 127.0.0.1, the real app, gradio_client through the
forwarded port (the "public URL"), a killed server-side session that the supervisor restores, and readable
errors for a refused key, a refused connection, a busy remote port and an app that never answers."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tunnel.sshd import free_port, keygen
from svc_core.tunnel import TunnelSupervisor, settings_from_env
from svc_core.tunnel.probe import status_of

GUARD = 60  # seconds: upper bound for waits (a hang guard, not a timing assertion)


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def tiny_app():
    """A stand-in app for the error cases (the real app is used in the round trip)."""
    server = HTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def _ssh_settings(sshd, app_port: int, **overrides):
    values = dict(local_port=app_port, ssh_destination=sshd.dest, ssh_port=sshd.port, ssh_key=str(sshd.client_key),
                  ssh_known_hosts=str(sshd.known_hosts), ssh_remote_bind="127.0.0.1", ssh_remote_port=free_port(),
                  ssh_options=("-F", "none"), local_wait=GUARD, backoff_initial=0.5, public_wait=20)
    values.update(overrides)
    return settings_from_env("ssh", env={}, **values)


def test_app_through_ssh_tunnel_survives_a_killed_session(sshd, tunnel_voice, tmp_path, monkeypatch):
    from gradio_client import Client, handle_file

    from svc_core.ui.server import launch
    from svc_core.ui.settings import AppSettings

    root, clip = tunnel_voice
    forward = free_port()
    for key, value in {"SVC_SSH_DEST": sshd.dest, "SVC_SSH_PORT": str(sshd.port), "SVC_SSH_KEY": str(sshd.client_key),
                       "SVC_SSH_KNOWN_HOSTS": str(sshd.known_hosts), "SVC_SSH_REMOTE_BIND": "127.0.0.1",
                       "SVC_SSH_REMOTE_PORT": str(forward), "SVC_SSH_OPTIONS": "-F none"}.items():
        monkeypatch.setenv(key, value)
    settings = AppSettings(port=free_port(), models_dir=root / "models", examples_dir=root / "no-examples",
                           work_dir=tmp_path / "work", quiet=True, tunnel="ssh", allow_anonymous=True)
    demo, state = launch(settings, block=False)
    tunnel = state.tunnel
    try:
        status = tunnel.wait_for(("up",), GUARD)
        assert status.state == "up", status
        public = f"http://127.0.0.1:{forward}/"
        assert status.public_url == public
        deadline = time.monotonic() + GUARD
        while not tunnel.status().verified and time.monotonic() < deadline:
            time.sleep(0.2)
        assert tunnel.status().verified, tunnel.status()

        page = status_of(public)
        assert page == 200
        client = Client(public, verbose=False, analytics_enabled=False, download_files=str(tmp_path / "dl"))
        audio, log, *_ = client.predict(audio=handle_file(str(clip)), model="demo-voice", speaker="alto",
                                        f0_predictor="pm", api_name="/convert")
        assert "done:" in log

        assert sshd.kill_sessions() >= 1  # the server side drops the tunnel
        status = tunnel.wait_for(("reconnecting",), GUARD)
        assert status.state == "reconnecting" and "closed" in status.message, status
        status = tunnel.wait_for(("up",), GUARD)
        assert status.state == "up" and status.restarts >= 1, status
        client = Client(public, verbose=False, analytics_enabled=False, download_files=str(tmp_path / "dl2"))
        audio, log, *_ = client.predict(audio=handle_file(str(clip)), model="demo-voice", speaker="alto",
                                        f0_predictor="pm", api_name="/convert")
        assert "done:" in log
    finally:
        tunnel.stop()
        demo.close()
    assert tunnel.status().state == "stopped"


def _run_until_failed(settings) -> str:
    supervisor = TunnelSupervisor(settings).start()
    try:
        status = supervisor.wait_for(("failed",), GUARD)
    finally:
        supervisor.stop()
    assert status.state == "failed", status
    assert "\n" not in status.message and "Traceback" not in status.message
    return status.message


def test_bad_key_is_refused_with_one_sentence(sshd, tiny_app, tmp_path):
    stranger = keygen(tmp_path / "stranger_ed25519")
    message = _run_until_failed(_ssh_settings(sshd, tiny_app, ssh_key=str(stranger)))
    assert message.startswith(f"The ssh server 127.0.0.1:{sshd.port} refused the key {stranger}")


def test_connection_refused(sshd, tiny_app):
    closed = free_port()
    message = _run_until_failed(_ssh_settings(sshd, tiny_app, ssh_port=closed, max_restarts=1))
    assert f"127.0.0.1:{closed} refused the connection" in message and "gave up after 1 restarts" in message


def test_remote_port_in_use(sshd, tiny_app):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        message = _run_until_failed(_ssh_settings(sshd, tiny_app, ssh_remote_port=port, max_restarts=1))
    assert f"could not open port {port}" in message


def test_app_that_never_answers(sshd):
    message = _run_until_failed(_ssh_settings(sshd, free_port(), local_wait=1))
    assert message.startswith("Nothing answers at http://127.0.0.1:")


def test_missing_ssh_binary(sshd, tiny_app):
    message = _run_until_failed(_ssh_settings(sshd, tiny_app, ssh_path="/nonexistent/ssh"))
    assert message.startswith("The ssh program (/nonexistent/ssh) was not found")
