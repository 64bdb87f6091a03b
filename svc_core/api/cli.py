"""`python -m svc_core api ...` (the REST API alone, or `--print-schema`) and `python -m svc_core tokens ...`
(create / list / revoke API tokens of a work folder)."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

DEFAULT_API_PORT = 7861


def add_parsers(sub) -> None:
    from ..ui.settings import DEFAULT_MAX_FILE_SIZE, add_job_limit_options

    p = sub.add_parser("api", help="serve the REST API (/api/v1) without the page; --print-schema writes its "
                                   "OpenAPI JSON")
    p.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1; beyond loopback every "
                   "caller needs a token unless --allow-anonymous)")
    p.add_argument("--port", type=int, default=DEFAULT_API_PORT, help=f"port (default {DEFAULT_API_PORT})")
    p.add_argument("--models-dir", default="models", help="folder of voices (default ./models)")
    p.add_argument("--no-starter-voices", action="store_true", help="offer only --models-dir, not voices/starter")
    p.add_argument("--work-dir", default=None, help="uploads, tokens, caches (default: the per-user cache folder, "
                   "as the page's); one server per folder")
    p.add_argument("--jobs", default=None, metavar="redis://HOST:PORT/DB",
                   help="run jobs on Dramatiq workers (`python -m svc_core worker`) instead of in this process")
    p.add_argument("--job-store", default=None, metavar="FOLDER|s3://BUCKET/PREFIX",
                   help="jobs' inputs and results (default <work-dir>/blobs)")
    p.add_argument("--concurrency", type=int, default=1, help="jobs run at once by this process (default 1)")
    p.add_argument("--max-file-size", default=DEFAULT_MAX_FILE_SIZE, help="largest upload (default 200mb)")
    p.add_argument("--threads", default=None, help="CPU threads per job: auto or a count")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    p.add_argument("--allow-anonymous", action="store_true",
                   help="with a non-loopback --host, serve callers without a token (when no tokens exist)")
    add_job_limit_options(p)
    p.add_argument("--print-schema", nargs="?", const="-", default=None, metavar="PATH",
                   help="write the OpenAPI schema (JSON) to PATH or stdout and exit")

    t = sub.add_parser("tokens", help="API tokens of a work folder: create (printed once), list, revoke")
    t.add_argument("--work-dir", default=None, help="the server's work folder (default: the per-user cache folder)")
    tsub = t.add_subparsers(dest="tokens_command", required=True)
    c = tsub.add_parser("create", help="make a token and print it (only its hash is kept)")
    c.add_argument("--name", required=True, help="who uses it; it owns the jobs and voices made with it")
    c.add_argument("--scope", action="append", default=[], choices=("read", "convert", "voices", "admin"),
                   help="repeat for several (default: read and convert)")
    tsub.add_parser("list", help="names, scopes, dates (never the tokens)")
    r = tsub.add_parser("revoke", help="revoke a token by name (at once, also for a running server)")
    r.add_argument("name")


def _settings(args: argparse.Namespace):
    from ..ui.settings import (STARTER_SOVITS, STARTER_VOICES, AppSettings, SettingsError, _check_jobs_url,
                               job_limit_values, parse_size)

    if not 1 <= args.port <= 65535:
        raise SettingsError(f"--port {args.port} is not a TCP port (1-65535).")
    if args.concurrency < 1:
        raise SettingsError("--concurrency must be 1 or more.")
    return AppSettings(host=args.host, port=args.port, models_dir=Path(args.models_dir),
                       work_dir=Path(args.work_dir) if args.work_dir else None, jobs=_check_jobs_url(args.jobs),
                       job_store=args.job_store, concurrency=args.concurrency,
                       max_file_size=parse_size(args.max_file_size), threads=args.threads, device=args.device,
                       allow_anonymous=args.allow_anonymous, **job_limit_values(args),
                       shipped_voices=() if args.no_starter_voices else (STARTER_VOICES, STARTER_SOVITS)).resolve()


def schema_json() -> str:
    """The API's OpenAPI schema as docs/openapi.json holds it."""
    from ..ui.settings import AppSettings
    from .app import ApiContext, create_api
    from .tokens import TokenStore

    with tempfile.TemporaryDirectory() as tmp:
        api = create_api(ApiContext(None, None, TokenStore.in_work_dir(Path(tmp)), AppSettings(), None, Path(tmp)))
        return json.dumps(api.openapi(), indent=2, ensure_ascii=False) + "\n"


def run_api(args: argparse.Namespace) -> int:
    if args.print_schema is not None:
        text = schema_json()
        if args.print_schema == "-":
            sys.stdout.write(text)
        else:
            Path(args.print_schema).write_text(text, encoding="utf-8")
        return 0
    import logging

    from .standalone import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return serve(_settings(args))


def run_tokens(args: argparse.Namespace) -> int:
    from ..ui.workdir import default_work_dir
    from .tokens import TokenStore

    store = TokenStore.in_work_dir(Path(args.work_dir).expanduser().resolve() if args.work_dir
                                   else default_work_dir())
    if args.tokens_command == "create":
        token = store.create(args.name, args.scope)
        print(token)
        print(f"(token '{args.name}' saved as a hash in {store.path}; this is the only time it is shown)",
              file=sys.stderr)
    elif args.tokens_command == "list":
        for record in store.records():
            state = "revoked" if record.revoked else "active"
            print(f"{record.name}\t{','.join(record.scopes)}\t{state}")
    else:
        store.revoke(args.name)
        print(f"revoked '{args.name}'")
    return 0
