"""Public link for the web demo (issue #5): a supervised reverse tunnel through frp (`frpc`) or OpenSSH (`ssh -R`).

    settings.py    TunnelSettings (dataclass) from flags / environment variables, validated with readable errors
    frp.py         frpc.toml generation + validation, `{{ .Envs.X }}` template rendering (frp's own syntax)
    ssh.py         the `ssh -N -R` command line
    explain.py     turn frpc / ssh output into one readable sentence (and whether retrying can help)
    probe.py       "does this URL answer?" with bounded waits
    supervisor.py  TunnelSupervisor: wait for the app, run the tunnel, check the public URL, restart with backoff
    panel.py       the tunnel state line in the page (Gradio, imported only by the web server)
    cli.py         `python -m svc_core tunnel frp|ssh ...`
"""
from .settings import TunnelError, TunnelSettings, settings_from_env  # noqa: F401
from .supervisor import TunnelStatus, TunnelSupervisor  # noqa: F401
