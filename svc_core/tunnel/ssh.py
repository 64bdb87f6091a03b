"""The OpenSSH command line for the tunnel: `ssh -N -R [bind:]PORT:LOCAL_HOST:LOCAL_PORT user@host`.

Always with ExitOnForwardFailure (a forward that cannot open ends ssh, so the supervisor sees it), keep-alives
(a dead link ends ssh within keepalive_seconds * keepalive_count), BatchMode (never waits for a password prompt),
IdentitiesOnly with the given key, and `-v` so the supervisor can see when the forward is open and why it failed.
For frp's SSH tunnel gateway the frp proxy arguments go after the host (`ssh_remote_command`) and -N is left out.
"""
from __future__ import annotations

from pathlib import Path

from .settings import TunnelSettings

READY_MARKERS = ("remote forward success", "Allocated port", "frp (via SSH)")


def forward_spec(s: TunnelSettings) -> str:
    """The -R argument: [bind:]remote_port:local_host:local_port."""
    bind = f"{s.ssh_remote_bind}:" if s.ssh_remote_bind else ""
    return f"{bind}{s.forward_port}:{s.local_host}:{s.local_port}"


def ssh_command(s: TunnelSettings, executable: str | None = None) -> list[str]:
    """The argv for the tunnel (executable: the resolved ssh binary)."""
    cmd = [executable or s.ssh_path, "-v", "-T"]
    if not s.ssh_remote_command:
        cmd.append("-N")
    cmd += list(s.ssh_options)
    cmd += [
        "-o", "ExitOnForwardFailure=yes",
        "-o", f"ServerAliveInterval={int(s.keepalive_seconds)}",
        "-o", f"ServerAliveCountMax={int(s.keepalive_count)}",
        "-o", f"ConnectTimeout={int(s.connect_timeout)}",
        "-o", "BatchMode=yes",
        "-o", "IdentitiesOnly=yes",
        "-o", "StrictHostKeyChecking=accept-new",
        "-o", "TCPKeepAlive=yes",
    ]
    if s.ssh_known_hosts:
        cmd += ["-o", f"UserKnownHostsFile={s.ssh_known_hosts}"]
    cmd += ["-i", str(Path(s.ssh_key).expanduser()), "-p", str(s.ssh_port), "-R", forward_spec(s),
            s.ssh_destination]
    cmd += list(s.ssh_remote_command)
    return cmd
