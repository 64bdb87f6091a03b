"""A throwaway OpenSSH server for the tunnel tests: its own host key, authorized_keys and config, listening on
127.0.0.1 only on a free port, in the foreground (`sshd -D -e`), killed by `stop()`."""
from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "svc-test", "-f", str(path)], check=True)
    return path


@dataclass
class Sshd:
    root: Path
    port: int
    proc: subprocess.Popen
    client_key: Path
    known_hosts: Path
    user: str

    @property
    def dest(self) -> str:
        return f"{self.user}@127.0.0.1"

    def session_pids(self) -> list[int]:
        """The per-connection sshd processes (children of the listener)."""
        try:
            return [c.pid for c in psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill_sessions(self) -> int:
        pids = self.session_pids()
        for pid in pids:
            try:
                psutil.Process(pid).kill()
            except psutil.NoSuchProcess:
                pass
        return len(pids)

    def stop(self) -> None:
        self.kill_sessions()
        self.proc.kill()
        self.proc.wait(10)


def start_sshd(root: Path) -> Sshd:
    if not Path(SSHD).exists() or not shutil.which("ssh"):
        import pytest

        pytest.skip("OpenSSH server/client not installed (apt-get install openssh-server openssh-client)")
    root.mkdir(parents=True, exist_ok=True)
    host_key = keygen(root / "host_ed25519")
    client_key = keygen(root / "client_ed25519")
    (root / "authorized_keys").write_text((root / "client_ed25519.pub").read_text())
    port = free_port()
    (root / "sshd_config").write_text(f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {root / 'sshd.pid'}
AuthorizedKeysFile {root / 'authorized_keys'}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
AllowTcpForwarding yes
GatewayPorts no
X11Forwarding no
PermitTTY no
ClientAliveInterval 5
ClientAliveCountMax 2
LogLevel VERBOSE
""")
    host_pub = (root / "host_ed25519.pub").read_text().split()
    known = root / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory sshd insists on
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(root / "sshd_config")], stdout=subprocess.DEVNULL,
                            stderr=open(root / "sshd.log", "w"))
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"sshd did not start: {(root / 'sshd.log').read_text()}")
            time.sleep(0.1)
    return Sshd(root, port, proc, client_key, known, getpass.getuser())
