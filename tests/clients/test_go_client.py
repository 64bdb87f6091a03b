"""The Go client (clients/go, standard library only): `go vet` and `go build` with Debian's go (offline: no module
proxy, local toolchain, a temporary build cache), then the example program svc-convert converts a clip with the
starter voice against a real API server, and reports an API error by its code. Skipped only without `go`."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import soundfile as sf
from api_support import CLIP_SECONDS, JOB_GUARD_SECONDS, ROOT, SPEAKER, STARTER_KEY, start_api

from svc_core.api.tokens import TokenStore

GO_MODULE = ROOT / "clients" / "go"
BUILD_GUARD_SECONDS = 600  # hang guard for vet + build on a busy 2-core box (not a timing)
LENGTH_TOLERANCE = 0.05  # seconds: the converted file's length against the clip's

OPENAPI = ROOT / "docs" / "openapi.json"
# Go struct in clients/go/client.go -> the schema in docs/openapi.json whose fields it carries
GO_STRUCTS = {"Job": "Job", "Voice": "Voice", "ResultFile": "ResultInfo", "APIError": "ErrorBody"}
STRUCT = re.compile(r"^type (\w+) struct \{\n(.*?)^\}", re.S | re.M)
JSON_TAG = re.compile(r'`json:"([^",]+)[^"]*"`')

GO = shutil.which("go")
needs_go = pytest.mark.skipif(GO is None, reason="`go` is not installed (Debian: apt install golang-go); CI installs it")


def go_env(tmp: Path) -> dict[str, str]:
    """Offline, reproducible go: the local toolchain only, no module proxy or checksum database, caches in `tmp`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GO")}
    env.update(GOCACHE=str(tmp / "gocache"), GOPATH=str(tmp / "gopath"), GOTOOLCHAIN="local", GOPROXY="off",
               GOFLAGS="", GONOSUMDB="*", GOSUMDB="off", GO111MODULE="on", CGO_ENABLED="0",
               HOME=str(tmp))
    return env


@pytest.fixture(scope="module")
def svc_convert(tmp_path_factory) -> Path:
    """clients/go gofmt-ed and vetted, and its example built; the binary's path."""
    tmp = tmp_path_factory.mktemp("go")
    env = go_env(tmp)
    binary = tmp / "svc-convert"
    unformatted = subprocess.run([str(Path(GO).resolve().with_name("gofmt")), "-l", "."], cwd=GO_MODULE, env=env,
                                 capture_output=True, text=True, timeout=BUILD_GUARD_SECONDS)
    assert unformatted.returncode == 0 and unformatted.stdout == "", f"not gofmt-ed: {unformatted.stdout}"
    for command in ([GO, "vet", "./..."], [GO, "build", "-o", str(binary), "./cmd/svc-convert"]):
        run = subprocess.run(command, cwd=GO_MODULE, env=env, capture_output=True, text=True,
                             timeout=BUILD_GUARD_SECONDS)
        assert run.returncode == 0, f"{' '.join(command)} failed:\n{run.stdout}\n{run.stderr}"
    assert binary.is_file()
    return binary


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real API server that needs tokens (one exists before it starts)."""
    work = tmp_path_factory.mktemp("go-api") / "work"
    work.mkdir(parents=True)
    token = TokenStore.in_work_dir(work).create("go-client", ["read", "convert"])
    srv = start_api(work)
    yield srv, token
    srv.stop()


def run_example(binary: Path, url: str, token: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), "-server", url, "-token", token, *args], capture_output=True, text=True,
                          timeout=JOB_GUARD_SECONDS, env={"PATH": os.environ.get("PATH", "")})


@needs_go
def test_go_example_converts_a_clip(svc_convert, server, clip, tmp_path):
    srv, token = server
    out = tmp_path / "converted.wav"
    run = run_example(svc_convert, srv.url.removesuffix("/api/v1"), token, "-voice", STARTER_KEY,
                      "-speaker", SPEAKER, "-transpose", "2", str(clip), str(out))
    assert run.returncode == 0, f"svc-convert failed:\n{run.stdout}\n{run.stderr}"
    assert "job " in run.stdout and f"wrote {out}" in run.stdout
    info = sf.info(str(out))
    assert info.frames > 0 and abs(info.frames / info.samplerate - CLIP_SECONDS) < LENGTH_TOLERANCE
    assert not Path(str(out) + ".part").exists()

    with srv.client(token) as c:  # the job the example made, with the options it sent
        jobs = c.get("/jobs").json()["jobs"]
    params = [j["params"] for j in jobs if j["status"] == "done"]
    assert {"model": STARTER_KEY, "speaker": SPEAKER, "transpose": 2}.items() <= params[0].items()


@needs_go
def test_go_example_reports_api_errors_by_code(svc_convert, server, clip, tmp_path):
    srv, token = server
    url = srv.url  # the API root works as -server too
    out = tmp_path / "never.wav"
    run = run_example(svc_convert, url, token, "-voice", "no-such-voice", str(clip), str(out))
    assert run.returncode == 1 and "voice_not_found" in run.stderr and "HTTP 404" in run.stderr
    run = run_example(svc_convert, url, "svc_" + "x" * 40, "-voice", STARTER_KEY, str(clip), str(out))
    assert run.returncode == 1 and "unauthorized" in run.stderr and "HTTP 401" in run.stderr
    run = run_example(svc_convert, url, token, "-voice", STARTER_KEY, "-options", '{"noise_scale": 9}', str(clip),
                      str(out))
    assert run.returncode == 1 and "invalid_option" in run.stderr and "noise_scale" in run.stderr
    assert not out.exists()


def go_struct_fields(source: str) -> dict[str, set[str]]:
    """struct name -> the JSON names of its fields (tags "-" left out) in a Go source."""
    return {name: {tag for tag in JSON_TAG.findall(body) if tag != "-"} for name, body in STRUCT.findall(source)}


def test_go_structs_carry_the_schemas_fields():
    """The hand-written Go types name every field of the API's answers as docs/openapi.json does (no go needed)."""
    schemas = json.loads(OPENAPI.read_text(encoding="utf-8"))["components"]["schemas"]
    structs = go_struct_fields((GO_MODULE / "client.go").read_text(encoding="utf-8"))
    assert set(GO_STRUCTS) <= set(structs), structs.keys()
    for struct, schema in GO_STRUCTS.items():
        assert structs[struct] == set(schemas[schema]["properties"]), (struct, schema)
