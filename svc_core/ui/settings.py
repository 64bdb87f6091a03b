"""`AppSettings`: everything the web demo is started with, from the command line of `app.py`.

    python app.py [--host 127.0.0.1] [--port 7860] [--auth USER:PASS | --auth FILE] [--root-path /svc]
                  [--max-file-size 200mb] [--concurrency 1] [--queue-size 16] [--models-dir models]
                  [--no-starter-voices] [--work-dir DIR] [--max-uploads 16] [--max-upload-storage 4gb]
                  [--upload-max-age 14d] [--job-time-factor 10] [--job-time-allowance 120]
                  [--max-job-seconds 900] [--max-jobs-per-client 2] [--max-live-sessions 2]
                  [--max-live-minutes 30] [--job-max-age-days 7] [--max-queued-jobs 20]
                  [--max-queued-jobs-total 200]
"""
from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from .upload_store import UploadBudget

from .limits import (DEFAULT_ALLOWANCE_SECONDS, DEFAULT_JOBS_PER_CLIENT, DEFAULT_MAX_JOB_SECONDS,
                     DEFAULT_SECONDS_PER_AUDIO_SECOND, JobLimits)

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTER_VOICES = REPO_ROOT / "voices" / "starter"  # the four starter voices shipped in the repo (issue #4), WORLD voice
STARTER_SOVITS = REPO_ROOT / "voices" / "starter-sovits"  # the same four voices as a so-vits-svc 4.1 model (undertrained)
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_MAX_FILE_SIZE = "200mb"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_SIZE_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 24 * 3600}
DEFAULT_MAX_UPLOADS = 16  # uploaded voices kept on disk, all visitors together (upload_store.UploadBudget)
DEFAULT_MAX_UPLOAD_STORAGE = "4gb"  # their total size
DEFAULT_UPLOAD_MAX_AGE = "14d"  # an upload older than this is removed
DEFAULT_MAX_LIVE_SESSIONS = 2  # Live page streams at once, all visitors together (svc_core.live.web)
DEFAULT_MAX_LIVE_MINUTES = 30.0  # a Live stream ends after this long (0: no limit)
DEFAULT_JOB_MAX_AGE_DAYS = 7.0  # svc_core.jobs.limits (no import: that package loads the engine's job code)
DEFAULT_MAX_QUEUED_JOBS = 20
DEFAULT_MAX_QUEUED_TOTAL = 200


class SettingsError(ValueError):
    """A command-line value that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class AppSettings:
    """How the demo server runs. Paths are absolute after `resolve()`."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    auth: tuple[tuple[str, str], ...] = ()  # (user, password) pairs; empty = no login
    root_path: str = ""
    max_file_size: int = 200 * 1024**2  # bytes, per uploaded file
    concurrency: int = 1  # conversions running at the same time
    queue_size: int = 16  # conversions waiting; more get "the queue is full"
    models_dir: Path = Path("models")
    separation_dir: Path | None = None  # community separation models (Cover tab); None: $SVC_SEPARATION_DIR or
    # ./separation_models (svc_core.separation.registry.models_dir)
    shipped_voices: tuple[Path, ...] = (STARTER_VOICES, STARTER_SOVITS)  # listed first; the first is the default
    examples_dir: Path = REPO_ROOT / "examples"
    work_dir: Path | None = None  # uploads, results, caches; None = the per-user cache folder (workdir.py)
    max_cached_voices: int = 2  # loaded models kept in memory
    max_uploads: int = DEFAULT_MAX_UPLOADS  # uploaded voices kept on disk (oldest removed first)
    max_upload_bytes: int = 4 * 1024**3  # their total size on disk, bytes
    upload_max_age: float = 14 * 24 * 3600.0  # seconds an upload is kept
    show_all_uploads: bool | None = None  # list every upload to every browser; None: only on a private page
    device: str = "cpu"
    threads: str | None = None  # CPU threads per job: "auto" or a count (svc_core.threads); None = $SVC_THREADS/auto
    quiet: bool = False
    extra_allowed_paths: tuple[Path, ...] = field(default_factory=tuple)
    tunnel: str | None = None  # "frp" | "ssh": open a public tunnel (svc_core.tunnel, settings from env vars)
    allow_anonymous: bool = False  # expose publicly without --auth (explicit opt-in)
    job_time_factor: float = DEFAULT_SECONDS_PER_AUDIO_SECOND  # a job's budget: seconds per second of its audio
    job_time_allowance: float = DEFAULT_ALLOWANCE_SECONDS  # ... plus this many seconds (loading the voice)
    max_job_seconds: float = DEFAULT_MAX_JOB_SECONDS  # ... but never more than this (0: no cap)
    max_jobs_per_client: int = DEFAULT_JOBS_PER_CLIENT  # running + waiting conversions per person (0: no limit)
    max_live_sessions: int = DEFAULT_MAX_LIVE_SESSIONS  # Live page streams at once (0: the Live page is off)
    max_live_minutes: float = DEFAULT_MAX_LIVE_MINUTES  # length limit of one Live stream (0: none)
    jobs: str | None = None  # None: the REST API's jobs run in this process; "redis://...": on Dramatiq workers
    job_store: str | None = None  # inputs and results of jobs: a folder (None: <work_dir>/blobs) or s3://bucket/prefix
    job_max_age_days: float = DEFAULT_JOB_MAX_AGE_DAYS  # finished jobs (records, results) kept this long (0: forever)
    max_queued_jobs: int = DEFAULT_MAX_QUEUED_JOBS  # unfinished jobs one caller may have (0: no limit)
    max_queued_jobs_total: int = DEFAULT_MAX_QUEUED_TOTAL  # unfinished jobs of all callers (0: no limit)

    def job_limits(self) -> JobLimits:
        """The limits every conversion of this server runs under (ui.limits)."""
        return JobLimits(seconds_per_audio_second=self.job_time_factor, allowance_seconds=self.job_time_allowance,
                         max_job_seconds=self.max_job_seconds, concurrency=self.concurrency,
                         max_waiting=self.queue_size, per_client=self.max_jobs_per_client)

    def resolve(self) -> "AppSettings":
        """The same settings with absolute paths."""
        from dataclasses import replace

        return replace(self, models_dir=self.models_dir.expanduser().resolve(),
                       separation_dir=self.separation_dir.expanduser().resolve() if self.separation_dir else None,
                       examples_dir=self.examples_dir.expanduser().resolve(),
                       work_dir=self.work_dir.expanduser().resolve() if self.work_dir else None)

    @property
    def upload_budget(self) -> "UploadBudget":
        from .upload_store import UploadBudget

        return UploadBudget(self.max_uploads, self.max_upload_bytes, self.upload_max_age)

    @property
    def private_page(self) -> bool:
        """Only this machine's user reaches the page: loopback, no tunnel, no proxy prefix, no logins."""
        return self.host in LOOPBACK_HOSTS and not self.tunnel and not self.root_path and not self.auth

    @property
    def uploads_shown_to_all(self) -> bool:
        """Every upload is listed to every browser (a private page, unless `show_all_uploads` says otherwise);
        else each browser sees the uploads it made."""
        return self.private_page if self.show_all_uploads is None else self.show_all_uploads

    @property
    def local_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}{self.root_path if not self.root_path.startswith('http') else ''}/"


def parse_size(text: str, option: str = "--max-file-size") -> int:
    """'200mb' / '1gb' / '5000000' -> bytes."""
    match = re.fullmatch(r"\s*(\d+)\s*(b|kb|mb|gb)?\s*", str(text).lower())
    if not match:
        raise SettingsError(f"{option} {text!r} is not a size; use e.g. 200mb, 1gb or a number of bytes.")
    value = int(match.group(1)) * _SIZE_UNITS[match.group(2) or "b"]
    if value <= 0:
        raise SettingsError(f"{option} must be above 0.")
    return value


def parse_duration(text: str, option: str = "--upload-max-age") -> float:
    """'14d' / '12h' / '90m' / '3600' -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*", str(text).lower())
    if not match or float(match.group(1)) <= 0:
        raise SettingsError(f"{option} {text!r} is not a duration above 0; use e.g. 14d, 12h, 90m or seconds.")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]


def _pair(text: str, where: str) -> tuple[str, str]:
    user, sep, password = text.strip().partition(":")
    if not sep or not user or not password:
        raise SettingsError(f"{where}: expected USER:PASS with both parts non-empty.")
    return user, password


def parse_auth(value: str | None) -> tuple[tuple[str, str], ...]:
    """`USER:PASS`, or a file with one `USER:PASS` per line (blank lines and # comments skipped)."""
    if not value:
        return ()
    if os.path.isfile(value):
        pairs = []
        for number, line in enumerate(Path(value).read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip() and not line.lstrip().startswith("#"):
                pairs.append(_pair(line, f"{value} line {number}"))
        if not pairs:
            raise SettingsError(f"Auth file {value} has no USER:PASS lines.")
        return tuple(pairs)
    if ":" not in value:
        raise SettingsError(f"--auth {value!r}: no such file, and not USER:PASS.")
    return (_pair(value, "--auth"),)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="app.py", description="svc-studio web demo (so-vits-svc 4.x voice conversion)")
    p.add_argument("--host", default=DEFAULT_HOST,
                   help="interface to listen on (default 127.0.0.1: this machine only; 0.0.0.0 exposes it)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default 7860)")
    p.add_argument("--auth", default=None, help="require a login: USER:PASS, or a file with USER:PASS lines")
    p.add_argument("--root-path", default="", help="URL prefix when served behind a reverse proxy, e.g. /svc")
    p.add_argument("--max-file-size", default=DEFAULT_MAX_FILE_SIZE, help="largest upload (default 200mb)")
    p.add_argument("--concurrency", type=int, default=1, help="conversions run at the same time (default 1)")
    p.add_argument("--queue-size", type=int, default=16, help="conversions allowed to wait (default 16)")
    p.add_argument("--job-time-factor", type=float, default=DEFAULT_SECONDS_PER_AUDIO_SECOND, metavar="SECONDS",
                   help="time budget of a conversion, per second of its audio (default %(default)g); a job over its "
                        "budget is stopped with a message")
    p.add_argument("--job-time-allowance", type=float, default=DEFAULT_ALLOWANCE_SECONDS, metavar="SECONDS",
                   help="seconds added to every budget for loading the voice (default %(default)g)")
    p.add_argument("--max-job-seconds", type=float, default=DEFAULT_MAX_JOB_SECONDS, metavar="SECONDS",
                   help="no conversion runs longer than this, whatever its length (default %(default)g; 0: no cap)")
    p.add_argument("--max-jobs-per-client", type=int, default=DEFAULT_JOBS_PER_CLIENT, metavar="N",
                   help="conversions one person (login, else address or browser session) may have running or "
                        "waiting (default %(default)d; 0: no limit)")
    p.add_argument("--max-live-sessions", type=int, default=DEFAULT_MAX_LIVE_SESSIONS, metavar="N",
                   help="Live page streams at once, all visitors together (default %(default)d; each loads its "
                        "own copy of its voice and keeps a CPU busy; 0: no Live streams)")
    p.add_argument("--max-live-minutes", type=float, default=DEFAULT_MAX_LIVE_MINUTES, metavar="MINUTES",
                   help="a Live stream ends after this long (default %(default)g; 0: no limit)")
    p.add_argument("--models-dir", default="models",
                   help="folder of voices: <models-dir>/<name>/G_*.pth + config.json (default ./models)")
    p.add_argument("--no-starter-voices", action="store_true",
                   help="do not offer the shipped starter voices (voices/starter), only --models-dir")
    p.add_argument("--examples-dir", default=str(REPO_ROOT / "examples"), help=argparse.SUPPRESS)
    p.add_argument("--work-dir", default=None,
                   help="where uploaded voices, results and caches go (default: the per-user cache folder, "
                        "e.g. ~/.cache/svc-studio); one server per folder")
    p.add_argument("--max-uploads", type=int, default=DEFAULT_MAX_UPLOADS,
                   help=f"uploaded voices kept, oldest removed first (default {DEFAULT_MAX_UPLOADS})")
    p.add_argument("--max-upload-storage", default=DEFAULT_MAX_UPLOAD_STORAGE,
                   help=f"total size of the uploaded voices kept (default {DEFAULT_MAX_UPLOAD_STORAGE})")
    p.add_argument("--upload-max-age", default=DEFAULT_UPLOAD_MAX_AGE,
                   help=f"remove uploaded voices older than this, e.g. 14d, 12h (default {DEFAULT_UPLOAD_MAX_AGE})")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    p.add_argument("--threads", default=None, help="CPU threads per conversion: auto (default, or $SVC_THREADS: "
                   "chosen per job from the load) or a number to force")
    p.add_argument("--quiet", action="store_true", help="less console output")
    p.add_argument("--tunnel", choices=("frp", "ssh"), default=None,
                   help="open a public link with frpc or ssh -R (settings from FRP_* / SVC_SSH_* env vars, "
                        "see frp/README.md); needs --auth")
    p.add_argument("--allow-anonymous", action="store_true",
                   help="allow --tunnel or a non-loopback --host without --auth (anyone can use the page)")
    p.add_argument("--jobs", default=None, metavar="redis://HOST:PORT/DB",
                   help="where the REST API's jobs (/api/v1) run: in this server's own worker threads (default), "
                        "or, with a Redis URL, on `python -m svc_core worker` processes (Dramatiq) on any machine")
    p.add_argument("--job-store", default=None, metavar="FOLDER|s3://BUCKET/PREFIX",
                   help="where jobs' uploaded inputs and results are kept (default <work-dir>/blobs; kept across "
                        "restarts, so finished results are still served); s3://... for S3-compatible storage "
                        "(endpoint from $SVC_S3_ENDPOINT), which workers on other machines need")
    add_job_limit_options(p)
    return p


def add_job_limit_options(p: argparse.ArgumentParser) -> None:
    """--job-max-age-days, --max-queued-jobs, --max-queued-jobs-total (app.py and `python -m svc_core api`)."""
    p.add_argument("--job-max-age-days", type=float, default=DEFAULT_JOB_MAX_AGE_DAYS, metavar="DAYS",
                   help="finished jobs of the REST API and the Jobs tab (records and result files) are removed after "
                        "this many days (default %(default)g; 0: keep them)")
    p.add_argument("--max-queued-jobs", type=int, default=DEFAULT_MAX_QUEUED_JOBS, metavar="N",
                   help="jobs one caller (token, login) may have queued or running; more are refused as busy "
                        "(HTTP 429) until one ends (default %(default)d; 0: no limit)")
    p.add_argument("--max-queued-jobs-total", type=int, default=DEFAULT_MAX_QUEUED_TOTAL, metavar="N",
                   help="jobs all callers together may have queued or running (default %(default)d; 0: no limit)")


def job_limit_values(args: argparse.Namespace) -> dict:
    """The checked job limit options as AppSettings fields (SettingsError for negative values)."""
    if not args.job_max_age_days >= 0:
        raise SettingsError(f"--job-max-age-days must be 0 (keep) or more; got {args.job_max_age_days}.")
    for flag, value in (("--max-queued-jobs", args.max_queued_jobs),
                        ("--max-queued-jobs-total", args.max_queued_jobs_total)):
        if value < 0:
            raise SettingsError(f"{flag} must be 0 (no limit) or more; got {value}.")
    return {"job_max_age_days": args.job_max_age_days, "max_queued_jobs": args.max_queued_jobs,
            "max_queued_jobs_total": args.max_queued_jobs_total}


def _check_jobs_url(value: str | None) -> str | None:
    if value and not value.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError(f"--jobs {value!r}: give a Redis URL (redis://host:6379/0), or leave it out to run "
                            "jobs in this server.")
    return value or None


def parse_args(argv: Sequence[str] | None = None) -> AppSettings:
    """Command line -> AppSettings. Raises SettingsError with a readable message for bad values."""
    args = build_parser().parse_args(argv)
    from ..errors import OptionError
    from ..threads import default_setting, parse_threads

    try:  # --threads, else $SVC_THREADS: checked now, not at the first conversion
        parse_threads(default_setting() if args.threads is None else args.threads)
    except OptionError as err:
        raise SettingsError(f"{'--threads' if args.threads is not None else '$SVC_THREADS'}: {err}") from err
    if not 1 <= args.port <= 65535:
        raise SettingsError(f"--port {args.port} is not a TCP port (1-65535).")
    if args.concurrency < 1:
        raise SettingsError("--concurrency must be 1 or more.")
    if args.queue_size < 1:
        raise SettingsError("--queue-size must be 1 or more.")
    if args.max_uploads < 1:
        raise SettingsError("--max-uploads must be 1 or more.")
    for flag, value in (("--job-time-factor", args.job_time_factor), ("--job-time-allowance",
                        args.job_time_allowance), ("--max-job-seconds", args.max_job_seconds)):
        if not value >= 0:  # also refuses nan
            raise SettingsError(f"{flag} must be 0 or more seconds; got {value}.")
    if args.job_time_factor == 0 and args.job_time_allowance == 0:
        raise SettingsError("--job-time-factor and --job-time-allowance cannot both be 0: every job would stop "
                            "at once.")
    if args.max_jobs_per_client < 0:
        raise SettingsError("--max-jobs-per-client must be 0 (no limit) or more.")
    if args.max_live_sessions < 0:
        raise SettingsError("--max-live-sessions must be 0 (no Live streams) or more.")
    if not args.max_live_minutes >= 0:
        raise SettingsError(f"--max-live-minutes must be 0 (no limit) or more; got {args.max_live_minutes}.")
    root = args.root_path.rstrip("/")
    if root and not root.startswith(("/", "http://", "https://")):
        raise SettingsError("--root-path must start with / (e.g. /svc) or be a full http(s) URL.")
    if (args.tunnel or args.host not in LOOPBACK_HOSTS) and not args.auth and not args.allow_anonymous:
        where = f"--tunnel {args.tunnel}" if args.tunnel else f"--host {args.host}"
        raise SettingsError(f"Refusing to expose the page ({where}) without --auth USER:PASS; add "
                            "--allow-anonymous to let anyone use it.")
    return AppSettings(
        host=args.host, port=args.port, auth=parse_auth(args.auth), root_path=root,
        max_file_size=parse_size(args.max_file_size), concurrency=args.concurrency, queue_size=args.queue_size,
        models_dir=Path(args.models_dir), examples_dir=Path(args.examples_dir), threads=args.threads,
        shipped_voices=() if args.no_starter_voices else (STARTER_VOICES, STARTER_SOVITS),
        work_dir=Path(args.work_dir) if args.work_dir else None, device=args.device, quiet=args.quiet,
        tunnel=args.tunnel, allow_anonymous=args.allow_anonymous, max_uploads=args.max_uploads,
        max_upload_bytes=parse_size(args.max_upload_storage, "--max-upload-storage"),
        upload_max_age=parse_duration(args.upload_max_age),
        job_time_factor=args.job_time_factor,
        job_time_allowance=args.job_time_allowance, max_job_seconds=args.max_job_seconds,
        max_jobs_per_client=args.max_jobs_per_client, max_live_sessions=args.max_live_sessions,
        max_live_minutes=args.max_live_minutes, jobs=_check_jobs_url(args.jobs), job_store=args.job_store or None,
        **job_limit_values(args),
    ).resolve()
