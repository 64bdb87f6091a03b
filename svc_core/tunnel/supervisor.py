"""`TunnelSupervisor`: keeps one frpc or ssh tunnel open for the app, in a background thread.

1. checks the settings and finds the binary (missing binary, bad address: `failed` with one sentence, no retry);
2. waits until the app answers locally (bounded by `local_wait`);
3. starts the tunnel process and waits for it to report the forward/proxy open (bounded by `ready_wait`);
4. checks the public URL answers (bounded by `public_wait`) and shows it;
5. when the process ends, logs why (explain.py), and restarts it with exponential backoff, unless the reason
   cannot fix itself (refused key/token, unknown host): then `failed`.
"""
from __future__ import annotations

import collections
import logging
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from . import probe
from .explain import FRPC_PROXY_FAILED, FRPC_READY, Failure, explain_frpc, explain_ssh
from .settings import TunnelError, TunnelSettings
from .ssh import READY_MARKERS, ssh_command

log = logging.getLogger("svc_core.tunnel")
STATES = ("starting", "waiting-for-app", "connecting", "up", "reconnecting", "failed", "stopped")


@dataclass(frozen=True)
class TunnelStatus:
    """What the page and the command line show."""

    kind: str
    state: str = "starting"
    public_url: str = ""
    message: str = ""
    verified: bool = False  # the public URL answered
    restarts: int = 0
    since: float = 0.0  # time.time() of the last state change


class TunnelSupervisor:
    """Run, watch and restart the tunnel. `start()` returns at once; `stop()` ends the tunnel."""

    def __init__(self, settings: TunnelSettings) -> None:
        self.settings = settings
        self._status = TunnelStatus(settings.kind, public_url=settings.derived_public_url(), since=time.time())
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen | None = None
        self._workdir: tempfile.TemporaryDirectory | None = None

    # ------------------------------------------------------------------ public
    def status(self) -> TunnelStatus:
        with self._lock:
            return self._status

    def start(self) -> "TunnelSupervisor":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"tunnel-{self.settings.kind}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._terminate()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.status().state not in ("failed",):
            self._set("stopped", "tunnel closed")

    def wait_for(self, states: tuple[str, ...], timeout: float) -> TunnelStatus:
        """Block until the state is one of `states` (or failed/stopped), at most `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._status.state not in states + ("failed", "stopped"):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            return self._status

    def process_pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    # ------------------------------------------------------------------ internals
    def _set(self, state: str, message: str = "", **changes) -> None:
        with self._changed:
            self._status = replace(self._status, state=state, message=message, since=time.time(), **changes)
            self._changed.notify_all()
        level = logging.WARNING if state in ("reconnecting", "failed") else logging.INFO
        log.log(level, "tunnel %s: %s%s", self.settings.kind, state, f": {message}" if message else "")

    def _command(self) -> list[str]:
        s = self.settings
        binary = s.frpc_path if s.kind == "frp" else s.ssh_path
        found = shutil.which(binary)
        if not found:
            name = "frpc" if s.kind == "frp" else "ssh"
            hint = ("install frp v0.52+ from github.com/fatedier/frp/releases or set FRPC_PATH" if s.kind == "frp"
                    else "install OpenSSH (Debian: apt-get install openssh-client) or set SSH_PATH")
            raise TunnelError(f"The {name} program ({binary}) was not found: {hint}.")
        if s.kind == "ssh":
            return ssh_command(s, found)
        from .frp import write_frpc_config

        self._workdir = self._workdir or tempfile.TemporaryDirectory(prefix="svc-frpc-")
        config = write_frpc_config(s, Path(self._workdir.name) / "frpc.toml")
        return [found, "-c", str(config)]

    def _explain(self, lines: list[str], code: int | None) -> Failure:
        if self.settings.kind == "ssh":
            return explain_ssh(lines, code, self.settings)
        return explain_frpc(lines, code, self.settings)

    def _run(self) -> None:
        s = self.settings
        try:
            s.validate()
            command = self._command()
        except TunnelError as err:
            self._set("failed", str(err))
            return
        self._set("waiting-for-app", f"waiting for the app at {s.local_url}")
        if not probe.wait_for(s.local_url, s.local_wait, self._stop):
            if not self._stop.is_set():
                self._set("failed", f"Nothing answers at {s.local_url} after {s.local_wait:.0f} s: start the app "
                                    "first (or check its --port).")
            return
        backoff = s.backoff_initial
        restarts = 0
        while not self._stop.is_set():
            started = time.monotonic()
            failure = self._run_once(command, restarts)
            if self._stop.is_set() or failure is None:
                break
            if failure.fatal:
                self._set("failed", failure.message)
                break
            if time.monotonic() - started >= s.stable_after:
                backoff = s.backoff_initial
            restarts += 1
            if s.max_restarts and restarts > s.max_restarts:
                self._set("failed", f"{failure.message} (gave up after {s.max_restarts} restarts)")
                break
            self._set("reconnecting", f"{failure.message} Retrying in {backoff:.0f} s.", restarts=restarts,
                      verified=False)
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, s.backoff_max)
        if self._workdir is not None:
            self._workdir.cleanup()

    def _run_once(self, command: list[str], restarts: int) -> Failure | None:
        """One tunnel process from start to end; the Failure that ended it (None when stopped)."""
        s = self.settings
        self._set("connecting", f"opening the {s.kind} tunnel", restarts=restarts)
        lines: collections.deque[str] = collections.deque(maxlen=60)
        ready = threading.Event()
        proxy_failed = threading.Event()
        try:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True)
        except OSError as err:
            return Failure(f"Cannot run {command[0]}: {err.strerror or err}.", fatal=True)
        self._proc = proc
        markers = READY_MARKERS if s.kind == "ssh" else FRPC_READY

        def read() -> None:
            for line in proc.stdout:  # type: ignore[union-attr]
                line = line.rstrip()
                lines.append(line)
                log.debug("%s: %s", s.kind, line)
                if any(m in line for m in markers):
                    ready.set()
                if s.kind == "frp" and any(m in line for m in FRPC_PROXY_FAILED):
                    proxy_failed.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        deadline = time.monotonic() + s.ready_wait
        while not ready.is_set() and proc.poll() is None and not self._stop.is_set() and not proxy_failed.is_set():
            if time.monotonic() > deadline:
                self._terminate()
                reader.join(2)
                return Failure(f"The {s.kind} tunnel did not open within {s.ready_wait:.0f} s: "
                               f"{self._explain(list(lines), None).message}")
            ready.wait(0.2)
        if self._stop.is_set():
            return None
        if ready.is_set() and proc.poll() is None and not proxy_failed.is_set():
            self._announce_up()
            while proc.poll() is None and not self._stop.is_set() and not proxy_failed.is_set():
                self._stop.wait(0.5)
        if self._stop.is_set():
            return None
        self._terminate()
        reader.join(2)
        return self._explain(list(lines), proc.returncode)

    def _announce_up(self) -> None:
        url = self.status().public_url
        if not url:
            self._set("up", "tunnel open (no public URL to check: set SVC_TUNNEL_PUBLIC_URL)", verified=False)
            return
        self._set("up", f"tunnel open; checking {url}", verified=False)
        if probe.wait_for(url, self.settings.public_wait, self._stop, public=True):
            self._set("up", f"public link {url} answers", verified=True)
        elif not self._stop.is_set():
            self._set("up", f"the tunnel is open but {url} does not answer: check the server's DNS, firewall and "
                            "proxy settings (frp/README.md)", verified=False)

    def _terminate(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
