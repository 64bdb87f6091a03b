"""`TunnelSettings`: how the public tunnel is opened, from command-line flags and environment variables.

Secrets (the frp token, the ssh key) come from the environment or files, never from committed files. Environment
variables (the same names the committed `frp/frpc.toml` template and docker-compose.public.yml use):

    common  SVC_TUNNEL_PUBLIC_URL (checked after the tunnel opens and shown in the page)
    frp     FRPC_PATH, FRP_SERVER_ADDR, FRP_SERVER_PORT (7000), FRP_TOKEN, FRP_PROXY_NAME, FRP_PROXY_TYPE
            (http|https|tcp), FRP_CUSTOM_DOMAINS (comma list), FRP_REMOTE_PORT, FRP_TLS (true), FRP_HTTPS_CRT,
            FRP_HTTPS_KEY
    ssh     SSH_PATH, SVC_SSH_DEST (user@host), SVC_SSH_PORT (22), SVC_SSH_KEY, SVC_SSH_REMOTE_BIND,
            SVC_SSH_REMOTE_PORT, SVC_SSH_KNOWN_HOSTS, SVC_SSH_REMOTE_COMMAND (frp's SSH gateway: e.g.
            "http --custom_domain svc.example.com --token ..."), SVC_SSH_OPTIONS (extra ssh arguments, e.g. "-F none")
"""
from __future__ import annotations

import ipaddress
import os
import re
import shlex
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Mapping

from ..errors import SvcError

KINDS = ("frp", "ssh")
PROXY_TYPES = ("http", "https", "tcp")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}"
                       r"[A-Za-z0-9])?)*\.?$")
_USER = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._-]*$")


class TunnelError(SvcError):
    """A tunnel that cannot be opened; the message is one sentence saying why and what to do."""


@dataclass(frozen=True)
class TunnelSettings:
    """Everything the supervisor needs. `local_*` is where the app answers on this machine."""

    kind: str
    local_host: str = "127.0.0.1"
    local_port: int = 7860
    local_path: str = "/"
    public_url: str = ""  # "" = derived from the settings when possible
    # frp (frpc)
    frpc_path: str = "frpc"
    server_addr: str = ""
    server_port: int = 7000
    token: str = ""
    proxy_name: str = "svc-studio"
    proxy_type: str = "http"
    custom_domains: tuple[str, ...] = ()
    remote_port: int = 0
    tls: bool = True
    https_crt: str = ""
    https_key: str = ""
    # ssh
    ssh_path: str = "ssh"
    ssh_destination: str = ""  # [user@]host
    ssh_port: int = 22
    ssh_key: str = ""
    ssh_remote_bind: str = ""  # "" = the server's default (loopback unless GatewayPorts)
    ssh_remote_port: int = 0  # 0 = same as local_port
    ssh_known_hosts: str = ""
    ssh_remote_command: tuple[str, ...] = ()  # non-empty for frp's SSH tunnel gateway (then no -N)
    ssh_options: tuple[str, ...] = ()
    keepalive_seconds: int = 15
    keepalive_count: int = 3
    connect_timeout: int = 10
    # supervisor
    local_wait: float = 120.0  # seconds to wait for the app before giving up
    ready_wait: float = 30.0  # seconds for the tunnel to report it is open
    public_wait: float = 20.0  # seconds for the public URL to answer
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    stable_after: float = 60.0  # a run this long resets the backoff
    max_restarts: int = 0  # 0 = keep retrying

    @property
    def local_url(self) -> str:
        return f"http://{self.local_host}:{self.local_port}{self.local_path}"

    @property
    def forward_port(self) -> int:
        return self.ssh_remote_port or self.local_port

    @property
    def ssh_host(self) -> str:
        return self.ssh_destination.rpartition("@")[2]

    def derived_public_url(self) -> str:
        """The URL people use: the explicit one, else what the frp proxy / ssh forward implies ("" if unknown)."""
        if self.public_url:
            return self.public_url
        path = self.local_path if self.local_path.startswith("/") else "/"
        if self.kind == "frp":
            if self.proxy_type in ("http", "https") and self.custom_domains:
                return f"{self.proxy_type}://{self.custom_domains[0]}{path}"
            if self.proxy_type == "tcp" and self.remote_port:
                return f"http://{self.server_addr}:{self.remote_port}{path}"
            return ""
        if self.ssh_remote_command:
            return ""  # frp's gateway decides (custom domain / remote port in the command)
        host = self.ssh_remote_bind if self.ssh_remote_bind not in ("", "*", "0.0.0.0", "localhost") else self.ssh_host
        return f"http://{host}:{self.forward_port}{path}" if host else ""

    def validate(self) -> "TunnelSettings":
        """Raise TunnelError (one sentence) for values that cannot work; return self."""
        if self.kind not in KINDS:
            raise TunnelError(f"Unknown tunnel {self.kind!r}; use frp or ssh.")
        _port(self.local_port, "the app port")
        if self.kind == "frp":
            _validate_frp(self)
        else:
            _validate_ssh(self)
        if self.public_url and not re.match(r"^https?://[^/\s]+", self.public_url):
            raise TunnelError(f"Public URL {self.public_url!r} must start with http:// or https://.")
        return self


def _port(value: int, what: str) -> None:
    if not 1 <= int(value) <= 65535:
        raise TunnelError(f"{what.capitalize()} {value} is not a TCP port (1-65535).")


def is_host(text: str) -> bool:
    """A bare host name or IP address (no scheme, port or path)."""
    try:
        ipaddress.ip_address(text.strip("[]"))
        return True
    except ValueError:
        return bool(_HOSTNAME.match(text))


def _validate_frp(s: TunnelSettings) -> None:
    if not s.server_addr:
        raise TunnelError("No frp server address: set FRP_SERVER_ADDR (or --server-addr) to your frps host.")
    if not is_host(s.server_addr):
        raise TunnelError(f"frp server address {s.server_addr!r} is not a host name or IP address "
                          "(no http://, port or path).")
    _port(s.server_port, "the frp server port")
    if not s.token:
        raise TunnelError("No frp token: set FRP_TOKEN to the auth.token of your frps (never commit it).")
    if s.proxy_type not in PROXY_TYPES:
        raise TunnelError(f"frp proxy type {s.proxy_type!r} is not one of {', '.join(PROXY_TYPES)}.")
    if s.proxy_type in ("http", "https"):
        if not s.custom_domains:
            raise TunnelError(f"An frp {s.proxy_type} proxy needs a domain: set FRP_CUSTOM_DOMAINS "
                              "(e.g. svc.example.com) pointing at your frps host.")
        bad = [d for d in s.custom_domains if not is_host(d)]
        if bad:
            raise TunnelError(f"frp custom domain {bad[0]!r} is not a host name.")
    if s.proxy_type == "https" and not (s.https_crt and s.https_key):
        raise TunnelError("An frp https proxy needs the certificate and key for the domain: set FRP_HTTPS_CRT "
                          "and FRP_HTTPS_KEY (or use type http behind a TLS proxy on the server, see frp/README.md).")
    if s.proxy_type == "tcp":
        if not s.remote_port:
            raise TunnelError("An frp tcp proxy needs FRP_REMOTE_PORT (the port opened on the frps host).")
        _port(s.remote_port, "the frp remote port")
    if not re.match(r"^[A-Za-z0-9_.-]+$", s.proxy_name):
        raise TunnelError(f"frp proxy name {s.proxy_name!r} may only use letters, digits, '.', '_' and '-'.")


def _validate_ssh(s: TunnelSettings) -> None:
    if not s.ssh_destination:
        raise TunnelError("No ssh server: set SVC_SSH_DEST (or --dest) to user@host.")
    user, _, host = s.ssh_destination.rpartition("@")
    if (user and not _USER.match(user)) or not is_host(host):
        raise TunnelError(f"ssh destination {s.ssh_destination!r} is not user@host (a host name or IP address).")
    _port(s.ssh_port, "the ssh port")
    _port(s.forward_port, "the forwarded port")
    if not s.ssh_key:
        raise TunnelError("No ssh key: set SVC_SSH_KEY (or --key) to a private key file the server accepts.")
    if not Path(s.ssh_key).expanduser().is_file():
        raise TunnelError(f"ssh key file {s.ssh_key} does not exist.")
    if s.ssh_remote_bind and s.ssh_remote_bind != "*" and not is_host(s.ssh_remote_bind):
        raise TunnelError(f"ssh remote bind address {s.ssh_remote_bind!r} is not a host or IP address.")


def _flag(text: str) -> bool:
    return text.strip().lower() not in ("0", "false", "no", "off", "")


_ENV: dict[str, tuple[str, type]] = {
    "public_url": ("SVC_TUNNEL_PUBLIC_URL", str),
    "frpc_path": ("FRPC_PATH", str), "server_addr": ("FRP_SERVER_ADDR", str),
    "server_port": ("FRP_SERVER_PORT", int), "token": ("FRP_TOKEN", str), "proxy_name": ("FRP_PROXY_NAME", str),
    "proxy_type": ("FRP_PROXY_TYPE", str), "custom_domains": ("FRP_CUSTOM_DOMAINS", tuple),
    "remote_port": ("FRP_REMOTE_PORT", int), "tls": ("FRP_TLS", bool), "https_crt": ("FRP_HTTPS_CRT", str),
    "https_key": ("FRP_HTTPS_KEY", str),
    "ssh_path": ("SSH_PATH", str), "ssh_destination": ("SVC_SSH_DEST", str), "ssh_port": ("SVC_SSH_PORT", int),
    "ssh_key": ("SVC_SSH_KEY", str), "ssh_remote_bind": ("SVC_SSH_REMOTE_BIND", str),
    "ssh_remote_port": ("SVC_SSH_REMOTE_PORT", int), "ssh_known_hosts": ("SVC_SSH_KNOWN_HOSTS", str),
    "ssh_remote_command": ("SVC_SSH_REMOTE_COMMAND", list), "ssh_options": ("SVC_SSH_OPTIONS", list),
}


def settings_from_env(kind: str, env: Mapping[str, str] | None = None, **overrides) -> TunnelSettings:
    """TunnelSettings from environment variables, then `overrides` (None values are ignored); validated."""
    env = os.environ if env is None else env
    values: dict = {}
    for name, (var, kind_of) in _ENV.items():
        raw = env.get(var)
        if raw is None or raw == "":
            continue
        try:
            if kind_of is int:
                values[name] = int(raw)
            elif kind_of is bool:
                values[name] = _flag(raw)
            elif kind_of is tuple:
                values[name] = tuple(d.strip() for d in raw.split(",") if d.strip())
            elif kind_of is list:
                values[name] = tuple(shlex.split(raw))
            else:
                values[name] = raw
        except ValueError:
            raise TunnelError(f"{var}={raw!r} is not a whole number.") from None
    known = {f.name for f in fields(TunnelSettings)}
    values.update({k: v for k, v in overrides.items() if v is not None and k in known})
    return replace(TunnelSettings(kind=kind), **values).validate()
