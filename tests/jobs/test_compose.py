"""docker-compose.yml (api + redis + scalable workers) without Docker: the YAML parses, the commands parse with the
real argparse parsers (the app's and `python -m svc_core worker`'s), and the app and the workers share the folders
and Redis they must share."""
from __future__ import annotations

from pathlib import Path

import pytest

from svc_core.cli import build_parser as cli_parser
from svc_core.jobs.service import BLOBS_FOLDER
from svc_core.jobs.worker_cli import settings_from_args
from svc_core.ui.settings import build_parser as app_parser
from svc_core.ui.settings import parse_args as parse_app_args
from svc_core.ui.workdir import UPLOADS

REPO = Path(__file__).resolve().parents[2]
WORKER_ENTRYPOINT = ["tini", "--", "python", "-m", "svc_core", "worker"]


@pytest.fixture(scope="module")
def compose() -> dict:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def mounts(service: dict) -> dict[str, str]:
    """container path -> source (volume name or host path)."""
    return {spec.split(":")[1]: spec.split(":")[0] for spec in service["volumes"]}


def test_services_and_scaling(compose):
    services = compose["services"]
    assert {"api", "redis", "worker"} <= set(services)
    worker = services["worker"]
    assert "ports" not in worker and "container_name" not in worker  # `--scale worker=3` needs neither
    assert worker["entrypoint"] == WORKER_ENTRYPOINT
    assert services["redis"]["image"].startswith("redis:7")
    for name in ("api", "worker", "worker-gpu"):
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
        assert services[name]["build"]["context"] == "." and (REPO / "Dockerfile").is_file()  # the repo's image
    assert services["worker-gpu"]["profiles"] == ["gpu"]  # only with --profile gpu


def test_worker_commands_parse_with_the_worker_cli(compose):
    for name, queues in (("worker", ("cpu",)), ("worker-gpu", ("gpu",))):
        service = compose["services"][name]
        args = cli_parser().parse_args(["worker", *service["command"]])  # SystemExit on an unknown option
        settings = settings_from_args(args)
        assert settings.queues == queues
        assert settings.redis_url == "redis://redis:6379/0" and settings.job_store == settings.redis_url
    assert settings.device == "cuda"


def test_api_command_parses_with_the_app_parser_and_queues_on_redis(compose):
    command = compose["services"]["api"]["command"]
    known = {s for action in app_parser()._actions for s in action.option_strings}
    if "--jobs" not in known:
        pytest.skip("app.py has no --jobs option in this branch yet (the API branch adds --jobs / --job-store)")
    settings = parse_app_args(command)  # SystemExit on an unknown option, SettingsError on a bad value
    assert settings.jobs == "redis://redis:6379/0" and settings.job_store == "/data/blobs"
    assert compose["services"]["api"]["ports"] == ["127.0.0.1:7860:7860"]


def test_the_app_and_the_workers_share_blobs_uploads_voices_and_redis(compose):
    api, worker = compose["services"]["api"], compose["services"]["worker"]
    api_work = option(api["command"], "--work-dir")
    worker_cmd = worker["command"]
    # job files: the app's --job-store is the workers' --store, on the shared volume (the app's default folder too)
    assert option(worker_cmd, "--store") == option(api["command"], "--job-store") == f"{api_work}/{BLOBS_FOLDER}"
    # uploaded voices: the app's <work-dir>/uploads is the workers' <work-dir>/uploads
    assert option(worker_cmd, "--work-dir") == api_work and UPLOADS == "uploads"
    assert mounts(api)[api_work] == mounts(worker)[api_work] == "data" and "data" in compose["volumes"]
    assert mounts(api)["/app/models"] == mounts(worker)["/app/models"] == "./models"
    assert option(worker_cmd, "--models-dir") == option(api["command"], "--models-dir") == "/app/models"
    redis_host = option(worker_cmd, "--redis").split("//")[1].split(":")[0]
    assert redis_host in compose["services"]  # the service name is the host name on compose's network
