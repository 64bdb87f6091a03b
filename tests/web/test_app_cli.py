"""`python app.py` as people start it: a subprocess with --auth on an empty models folder (starter voices hidden).

It must bind 127.0.0.1 only, require the login, tell people what to load when there is no voice, and attempt no
connection outside this machine (an audit hook in the child reports every connect/getaddrinfo). Auth off is
checked on the in-process server.
"""
from __future__ import annotations

import json
import subprocess
import sys

import httpx
import psutil
import pytest

from app_process import app_env, free_port, wait_until_serving
from svc_core.ui.settings import REPO_ROOT

HOOK = """
import ipaddress, runpy, sys
def local(host):
    if host in ("localhost", "", "0.0.0.0"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False
def audit(event, args):
    if event == "socket.connect" and isinstance(args[1], tuple) and not local(args[1][0]):
        sys.stderr.write(f"OUTBOUND connect {args[1][0]}\\n")
    elif event == "socket.getaddrinfo" and args[0] is not None:
        host = args[0].decode() if isinstance(args[0], bytes) else args[0]
        if not local(host):
            sys.stderr.write(f"OUTBOUND lookup {host}\\n")
sys.addaudithook(audit)
sys.argv[0] = "app.py"
runpy.run_path("app.py", run_name="__main__")
"""


@pytest.fixture(scope="module")
def app_process(tmp_path_factory):
    root = tmp_path_factory.mktemp("app-cli")
    auth_file = root / "users.txt"
    auth_file.write_text("# people allowed in\nalice:wonderland\nbob:builder\n", encoding="utf-8")
    port = free_port()
    env = app_env(SVC_PRETRAIN_DIR=str(root / "no-pretrain"))
    proc = subprocess.Popen(
        [sys.executable, "-c", HOOK, "--auth", str(auth_file), "--port", str(port), "--models-dir",
         str(root / "models"), "--work-dir", str(root / "work"), "--quiet", "--no-starter-voices"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/"
    wait_until_serving(proc, url)
    yield proc, url, port
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_listens_on_loopback_only(app_process):
    proc, _, port = app_process
    family_addresses = set()
    for child in [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]:
        for conn in child.net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port:
                family_addresses.add(conn.laddr.ip)
    assert family_addresses == {"127.0.0.1"}


def test_auth_required(app_process):
    from gradio_client import Client

    _, url, _ = app_process
    assert httpx.get(url + "config", timeout=10).status_code == 401
    with pytest.raises(Exception):
        Client(url, verbose=False, analytics_enabled=False)
    with pytest.raises(Exception):
        Client(url, auth=("alice", "wrong"), verbose=False, analytics_enabled=False)
    client = Client(url, auth=("bob", "builder"), verbose=False, analytics_enabled=False)
    assert "/convert" in client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    # no voice yet: the page says what to load and where people get so-vits-svc models
    text = json.dumps(client.config)
    assert "No voice model found" in text and "so-vits-svc" in text and "Upload a voice" in text


def test_auth_off_by_default(server):
    assert httpx.get(server.url + "config", timeout=10).status_code == 200


def test_started_without_outbound_connections(app_process):
    proc, url, _ = app_process
    httpx.get(url, timeout=10)
    proc.terminate()
    _, err = proc.communicate(timeout=60)
    outbound = [line for line in err.splitlines() if line.startswith("OUTBOUND")]
    assert outbound == []
    assert "Traceback" not in err
