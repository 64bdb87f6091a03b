"""Turn the output of a failed `ssh` or `frpc` run into one readable sentence, and say whether retrying can help
(a refused key or an unknown host name will not fix itself; a dropped connection or a busy port may)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .settings import TunnelSettings


@dataclass(frozen=True)
class Failure:
    """Why a tunnel run ended. `fatal`: retrying with the same settings cannot help."""

    message: str
    fatal: bool = False


def _find(lines: Sequence[str], *needles: str) -> str | None:
    for line in reversed(lines):
        low = line.lower()
        if any(n.lower() in low for n in needles):
            return line
    return None


def _last_meaningful(lines: Sequence[str]) -> str:
    for line in reversed(lines):
        text = line.strip()
        if text and not text.startswith("debug"):
            return text
    return "no output"


def explain_ssh(lines: Sequence[str], returncode: int | None, s: TunnelSettings) -> Failure:
    """The reason an `ssh -R` run ended (lines: its combined output, oldest first)."""
    where = f"{s.ssh_host}:{s.ssh_port}"
    if _find(lines, "Permission denied (publickey", "Permission denied (", "Too many authentication failures"):
        return Failure(f"The ssh server {where} refused the key {s.ssh_key}: add its .pub line to the server's "
                       "authorized_keys (or use the key the server knows).", fatal=True)
    if _find(lines, "Could not resolve hostname", "Name or service not known"):
        return Failure(f"Cannot find the ssh server {s.ssh_host}: the name does not resolve.", fatal=True)
    if _find(lines, "Host key verification failed", "REMOTE HOST IDENTIFICATION HAS CHANGED"):
        return Failure(f"The ssh server {where} shows a different host key than the one in known_hosts; check "
                       "the server, then remove the old line from known_hosts.", fatal=True)
    if _find(lines, "UNPROTECTED PRIVATE KEY FILE", "bad permissions"):
        return Failure(f"ssh ignores the key {s.ssh_key} because other users can read it: chmod 600 it.",
                       fatal=True)
    if _find(lines, "invalid format", "Load key") and _find(lines, "Permission denied", "invalid format"):
        return Failure(f"The file {s.ssh_key} is not a private key ssh can read.", fatal=True)
    if _find(lines, "remote port forwarding failed", "forwarding failed for listen port"):
        return Failure(f"The ssh server {where} could not open port {s.forward_port} for the tunnel: it is "
                       "already in use there, or the server does not allow forwarding (AllowTcpForwarding).")
    if _find(lines, "Connection refused"):
        return Failure(f"The ssh server {where} refused the connection: is sshd listening on that port?")
    if _find(lines, "timed out", "Timeout, server"):
        return Failure(f"No answer from the ssh server {where} (timed out); retrying.")
    if _find(lines, "No route to host", "Network is unreachable"):
        return Failure(f"The ssh server {where} cannot be reached from here (no route); retrying.")
    if _find(lines, "Connection closed", "Connection reset", "Broken pipe", "closed by remote host",
             "Killed by signal", "Connection to"):
        return Failure(f"The ssh connection to {where} was closed; reconnecting.")
    return Failure(f"ssh to {where} ended (exit code {returncode}): {_last_meaningful(lines)}")


def explain_frpc(lines: Sequence[str], returncode: int | None, s: TunnelSettings) -> Failure:
    """The reason an frpc run ended or a proxy failed to start (lines: frpc's console log)."""
    where = f"{s.server_addr}:{s.server_port}"
    if _find(lines, "token in login doesn't match", "authorization failed", "authentication failed"):
        return Failure(f"The frp server {where} refused the token: FRP_TOKEN must equal auth.token in frps.toml.",
                       fatal=True)
    if _find(lines, "no such host", "server misbehaving"):
        return Failure(f"Cannot find the frp server {s.server_addr}: the name does not resolve.", fatal=True)
    if _find(lines, "first record does not look like a TLS handshake", "tls: "):
        return Failure(f"TLS to the frp server {where} failed: both sides must agree on transport.tls "
                       "(frps 0.52+ accepts TLS; set FRP_TLS=false only for an old server).", fatal=True)
    if _find(lines, "load config", "parse config", "unmarshal", "unknown field", "invalid config",
             "config file"):
        return Failure(f"frpc rejected its config: {_last_meaningful(lines)} (check it with `frpc verify -c`).",
                       fatal=True)
    if _find(lines, "port already used", "port unavailable", "port not allowed"):
        return Failure(f"The frp server {where} could not open port {s.remote_port} for the proxy: it is in use "
                       "or outside allowPorts.")
    if _find(lines, "router config conflict", "proxy name", "already exists"):
        return Failure(f"The frp server {where} already has a proxy {s.proxy_name!r} or domain "
                       f"{', '.join(s.custom_domains)}: another frpc is using it.")
    if _find(lines, "connection refused"):
        return Failure(f"The frp server {where} refused the connection: is frps running with bindPort "
                       f"{s.server_port}?")
    if _find(lines, "i/o timeout", "timed out"):
        return Failure(f"No answer from the frp server {where} (timed out); retrying.")
    if _find(lines, "start error"):
        return Failure(f"The frp server would not start the proxy: {_last_meaningful(lines)}")
    return Failure(f"frpc to {where} ended (exit code {returncode}): {_last_meaningful(lines)}")


FRPC_READY = ("start proxy success",)
FRPC_PROXY_FAILED = ("start error",)
