"""`python -m svc_core tunnel frp|ssh ...`: open the public tunnel for an app that is already running.

    python -m svc_core tunnel ssh --dest tunnel@vm.example.com --key ~/.ssh/svc_tunnel --remote-port 8080
    python -m svc_core tunnel frp --server-addr vm.example.com --domain svc.example.com   # FRP_TOKEN in env
    python -m svc_core tunnel frp --write-config frpc.toml    # only write the config (mode 0600), then exit

Flags override the environment variables listed in svc_core/tunnel/settings.py. Runs until Ctrl+C; exits 2 with
one sentence when the tunnel cannot work (missing binary, bad address, refused key/token).
"""
from __future__ import annotations

import argparse
import logging
import sys

from .settings import KINDS, PROXY_TYPES, TunnelError, settings_from_env


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", choices=KINDS, help="frp (runs frpc) or ssh (runs ssh -N -R)")
    p.add_argument("--port", type=int, default=7860, help="the app's local port (default 7860)")
    p.add_argument("--local-host", default="127.0.0.1", help="where the app listens (default 127.0.0.1)")
    p.add_argument("--root-path", default="/", help="the app's URL path (its --root-path), default /")
    p.add_argument("--public-url", default=None, help="the URL people use (checked and shown) [SVC_TUNNEL_PUBLIC_URL]")
    g = p.add_argument_group("frp")
    g.add_argument("--frpc", dest="frpc_path", default=None, help="frpc binary [FRPC_PATH, default: frpc on PATH]")
    g.add_argument("--server-addr", default=None, help="frps host [FRP_SERVER_ADDR]")
    g.add_argument("--server-port", type=int, default=None, help="frps bindPort [FRP_SERVER_PORT, 7000]")
    g.add_argument("--proxy-type", choices=PROXY_TYPES, default=None, help="[FRP_PROXY_TYPE, http]")
    g.add_argument("--domain", action="append", default=None, help="custom domain (repeatable) [FRP_CUSTOM_DOMAINS]")
    g.add_argument("--frp-remote-port", type=int, default=None, help="tcp proxy port on frps [FRP_REMOTE_PORT]")
    g.add_argument("--no-tls", action="store_true", help="transport.tls.enable = false (old frps only) [FRP_TLS]")
    g.add_argument("--write-config", default=None, metavar="FILE", help="write frpc.toml (0600) and exit")
    g = p.add_argument_group("ssh")
    g.add_argument("--dest", default=None, help="user@host of the ssh server [SVC_SSH_DEST]")
    g.add_argument("--ssh-port", type=int, default=None, help="[SVC_SSH_PORT, 22]")
    g.add_argument("--key", default=None, help="private key file [SVC_SSH_KEY]")
    g.add_argument("--remote-bind", default=None, help="bind address on the server [SVC_SSH_REMOTE_BIND]")
    g.add_argument("--remote-port", type=int, default=None, help="port opened on the server [SVC_SSH_REMOTE_PORT]")
    g.add_argument("--known-hosts", default=None, help="known_hosts file [SVC_SSH_KNOWN_HOSTS]")
    g.add_argument("--max-restarts", type=int, default=0, help="give up after this many restarts (0 = never)")


def settings_from_args(args: argparse.Namespace):
    """Environment variables, then the flags that were given."""
    return settings_from_env(
        args.kind, local_host=args.local_host, local_port=args.port, local_path=args.root_path.rstrip("/") + "/",
        public_url=args.public_url, frpc_path=args.frpc_path, server_addr=args.server_addr,
        server_port=args.server_port, proxy_type=args.proxy_type,
        custom_domains=tuple(args.domain) if args.domain else None, remote_port=args.frp_remote_port,
        tls=False if args.no_tls else None, ssh_destination=args.dest, ssh_port=args.ssh_port, ssh_key=args.key,
        ssh_remote_bind=args.remote_bind, ssh_remote_port=args.remote_port, ssh_known_hosts=args.known_hosts,
        max_restarts=args.max_restarts or None)


def run(args: argparse.Namespace) -> int:
    """Open and supervise the tunnel until Ctrl+C (TunnelError propagates: the main CLI prints it, exit 2)."""
    from .supervisor import TunnelSupervisor

    settings = settings_from_args(args)
    if args.write_config:
        if settings.kind != "frp":
            raise TunnelError("--write-config writes an frpc.toml; use it with `tunnel frp`.")
        from .frp import write_frpc_config

        print(f"wrote {write_frpc_config(settings, args.write_config)} (mode 0600: it holds the token)")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    supervisor = TunnelSupervisor(settings).start()
    try:
        while True:
            status = supervisor.wait_for(("failed", "stopped"), timeout=3600)
            if status.state in ("failed", "stopped"):
                print(f"error: {status.message}", file=sys.stderr)
                return 2
    except KeyboardInterrupt:
        supervisor.stop()
        print("tunnel closed", file=sys.stderr)
        return 130
