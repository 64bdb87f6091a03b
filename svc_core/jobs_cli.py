"""`python -m svc_core jobs list|show ID|cancel ID|download ID --server URL [--token T]`: the jobs of a running
server (the REST API, through svc_core.client.SvcClient) that these credentials submitted, from any client (the
page's API calls, `infer --server`, the Python or Go client).

Also the pieces every command talking to a server shares (`add_server_arguments`, `connect`, `explain`): the
server URL, the token (`--token` or $SVC_API_TOKEN), and an auth error turned into a message that says which
option to use.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from .client import ApiError, SvcClient
from .errors import SvcError

TOKEN_ENV = "SVC_API_TOKEN"
LIST_LIMIT = 50  # jobs `jobs list` shows by default (the server's default page)
AUTH_CODES = ("unauthorized", "token_revoked", "forbidden")
ACTIONS = ("list", "show", "cancel", "download")


class ServerError(SvcError):
    """A server could not be reached or refused the credentials; the message says what to do."""


def add_server_arguments(p, required: bool, server_help: str = "") -> None:
    """--server URL and --token on parser (or argument group) `p` (also used by `infer --server`)."""
    p.add_argument("--server", required=required, default=None, metavar="URL",
                   help="a running server (`python -m svc_core api`, or the app): http://HOST:PORT (its /api/v1 is "
                        "added)" + server_help)
    p.add_argument("--token", default=None, metavar="TOKEN",
                   help=f"API token for --server (default ${TOKEN_ENV}); needed when the server asks for one "
                        "(`python -m svc_core tokens create` on the server makes them)")


def connect(args: argparse.Namespace) -> SvcClient:
    """A client of --server with --token / $SVC_API_TOKEN; checks the server answers and accepts the credentials
    (GET /voices needs the read scope), else ServerError saying what to do."""
    token = token_of(args)
    client = SvcClient(args.server, token=token)
    try:
        client.voices()
    except ApiError as err:
        client.close()
        raise explain(err, args.server, token) from None
    except Exception as err:  # httpx transport errors: nothing listening, DNS, TLS
        client.close()
        raise ServerError(f"Cannot reach the server at {args.server} ({type(err).__name__}: {err}). Is it running "
                          "(`python -m svc_core api` or the app)?") from None
    return client


def token_of(args: argparse.Namespace) -> str | None:
    """--token, else $SVC_API_TOKEN, else None."""
    return args.token or os.environ.get(TOKEN_ENV) or None


def explain(err: ApiError, server: str, token: str | None) -> SvcError:
    """An auth refusal as a message naming --token / $SVC_API_TOKEN; other errors as they are."""
    if err.code not in AUTH_CODES:
        return err
    if token is None:
        return ServerError(f"The server at {server} needs an API token: pass --token TOKEN (or set ${TOKEN_ENV}); "
                           f"`python -m svc_core tokens create --name NAME --scope read --scope convert` on the "
                           f"server makes one. The server said: {err.message}")
    return ServerError(f"The server at {server} refused the token given with --token / ${TOKEN_ENV}: "
                       f"{err.message} ({err.code})")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="{" + ",".join(ACTIONS) + "}")
    lister = sub.add_parser("list", help="your jobs on the server, newest first")
    lister.add_argument("--limit", type=int, default=LIST_LIMIT, help=f"at most this many (default {LIST_LIMIT})")
    show = sub.add_parser("show", help="one job: status, stage, progress, ETA, timings, results, error")
    show.add_argument("--json", action="store_true", help="print the job record as JSON")
    cancel = sub.add_parser("cancel", help="cancel a job (queued: at once; running: at its next check)")
    download = sub.add_parser("download", help="a finished job's result files")
    download.add_argument("--out", default=".", metavar="DIR", help="folder to write them into (default: here)")
    download.add_argument("--name", default=None, help="only this result file")
    for action in (lister, show, cancel, download):
        if action is not lister:
            action.add_argument("job_id", metavar="ID", help="the job's id (`jobs list` shows them)")
        add_server_arguments(action, required=True)


def run(args: argparse.Namespace) -> int:
    with connect(args) as client:
        try:
            return {"list": _list, "show": _show, "cancel": _cancel, "download": _download}[args.action](client, args)
        except ApiError as err:
            raise explain(err, args.server, token_of(args)) from None


def progress_words(job: dict[str, Any]) -> str:
    """"running, converting 45%, ETA 3 s" (also `infer --server`'s progress lines)."""
    words = [job.get("status", "?")]
    stage = job.get("stage") or ""
    if stage and stage != words[0]:
        words.append(stage)
    if job.get("status") == "running":
        words[-1] += f" {float(job.get('progress') or 0.0):.0%}"
        eta = job.get("eta_seconds")
        if eta is not None:
            words.append(f"ETA {float(eta):.0f} s")
    return ", ".join(words)


def _when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "-"


def _input_name(job: dict[str, Any]) -> str:
    params = job.get("params") or {}
    return f"{params.get('model', '?')}/{params.get('speaker', '?')}"


def _list(client: SvcClient, args: argparse.Namespace) -> int:
    jobs = client.jobs(limit=args.limit)
    if not jobs:
        print("no jobs")
        return 0
    print(f"{'id':<32}  {'kind':<7}  {'created':<19}  {'voice':<24}  status")
    for job in jobs:
        print(f"{job['id']:<32}  {job.get('kind', ''):<7}  {_when(job.get('created_at')):<19}  "
              f"{_input_name(job):<24}  {progress_words(job)}")
    return 0


def _show(client: SvcClient, args: argparse.Namespace) -> int:
    job = client.job(args.job_id)
    if args.json:
        print(json.dumps(job, indent=2, sort_keys=True))
        return 0
    print(f"job {job['id']} ({job.get('kind')}, by {job.get('owner')}): {progress_words(job)}")
    print(f"created {_when(job.get('created_at'))}, started {_when(job.get('started_at'))}, "
          f"finished {_when(job.get('finished_at'))}, attempts {job.get('attempts', 0)}")
    params = job.get("params") or {}
    print("options: " + ", ".join(f"{k}={v}" for k, v in sorted(params.items())))
    for stage, seconds in (job.get("timings") or {}).items():
        print(f"  {stage:<16}{float(seconds):>9.3f} s")
    for result in job.get("results") or []:
        print(f"result: {result['name']} ({result.get('size', 0)} bytes, {result.get('media_type', '')})")
    error = job.get("error")
    if error:
        print(f"error: {error.get('message')} ({error.get('code')})")
    if job.get("message"):
        print(f"last log line: {job['message']}")
    return 0


def _cancel(client: SvcClient, args: argparse.Namespace) -> int:
    job = client.cancel(args.job_id)
    print(f"job {job['id']}: {progress_words(job)}"
          + (" (cancel requested)" if job.get("status") == "running" else ""))
    return 0


def _download(client: SvcClient, args: argparse.Namespace) -> int:
    job = client.job(args.job_id)
    if job.get("status") != "done":
        error = job.get("error") or {}
        detail = f": {error.get('message')} ({error.get('code')})" if error else ""
        raise ServerError(f"Job {job['id']} is {job.get('status')}{detail}; only a finished (done) job has results.")
    results = [r for r in job.get("results") or [] if args.name in (None, r["name"])]
    if not results:
        names = ", ".join(r["name"] for r in job.get("results") or []) or "none"
        raise ServerError(f"Job {job['id']} has no result '{args.name}'. Its results: {names}.")
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    for result in results:
        path = client.download(job["id"], result["name"], folder / Path(result["name"]).name)
        print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0

