"""Who is calling, and may they: API tokens (`Authorization: Bearer svc_...`) and the page's login cookie.

The rule (`auth_required`): the API asks every caller for credentials whenever the server
  * runs with `--auth` (the page has logins), or
  * runs with `--tunnel` (a public link: its requests reach the server from the loopback tunnel client, so the
    client's address says nothing), or
  * listens beyond loopback (`--host 0.0.0.0`, ...) without `--allow-anonymous`, or
  * has any API token in <work_dir>/api-tokens.json (revoked ones count: a server once closed stays closed).
Otherwise (a loopback server with none of these) the API is as open as the page: every caller is "local" with
every scope.

Credentials, when required:
  * a Bearer token: unknown -> 401 `unauthorized`, revoked -> 401 `token_revoked`, lacking the endpoint's scope
    -> 403 `forbidden`. The caller is the token's name (it owns the jobs and uploads made with it).
  * the page's login cookie (`--auth`; only when the API is mounted beside the page, which sets it at /login):
    the caller is "page:<user>" with the scopes read, convert and voices.
A Bearer token that is sent is always checked, also when the API is open (a wrong token is an error, not ignored).
Scopes: read (voices, own jobs, results), convert (conversions, covers, cancel), voices (upload/delete own
voices), admin (every job and upload, whoever made it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from ..jobs import errors as codes
from .errors import problem
from .tokens import SCOPES, TokenStore

if TYPE_CHECKING:
    from ..ui.settings import AppSettings

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
LOCAL_OWNER = "local"
PAGE_OWNER_PREFIX = "page:"
PAGE_SCOPES = ("read", "convert", "voices")

bearer = HTTPBearer(auto_error=False, description="An API token: `python -m svc_core tokens create --name NAME`.")

# the page's login check: a request -> the logged-in user's name, or None (set when mounted beside Gradio)
LoginCheck = Callable[[HTTPConnection], "str | None"]


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of one request."""

    owner: str  # token name, "page:<user>" or "local"
    scopes: tuple[str, ...]
    via: str  # "token", "login" or "open"

    @property
    def admin(self) -> bool:
        return "admin" in self.scopes

    def owner_filter(self) -> str | None:
        """The owner to restrict listings and lookups to (None: an admin sees everything)."""
        return None if self.admin else self.owner


def auth_required(settings: "AppSettings", tokens: TokenStore) -> bool:
    """The rule in this module's docstring."""
    exposed = settings.host not in LOOPBACK_HOSTS and not settings.allow_anonymous
    return bool(settings.auth) or bool(settings.tunnel) or exposed or tokens.any()


def authenticate(conn: HTTPConnection, token: str | None, settings: "AppSettings", tokens: TokenStore,
                 login_check: LoginCheck | None) -> Caller:
    """The caller of a request, or ApiProblem 401."""
    if token:
        record = tokens.check(token).record
        if record is None:
            raise problem(codes.UNAUTHORIZED, "Unknown API token. Send `Authorization: Bearer <token>` with a token "
                          "made by `python -m svc_core tokens create`.", 401)
        if not record.active:
            raise problem(codes.TOKEN_REVOKED, f"The API token '{record.name}' was revoked; ask for a new one.", 401)
        return Caller(record.name, tuple(record.scopes), "token")
    if login_check is not None:
        user = login_check(conn)
        if user:
            return Caller(PAGE_OWNER_PREFIX + user, PAGE_SCOPES, "login")
    if not auth_required(settings, tokens):
        return Caller(LOCAL_OWNER, SCOPES, "open")
    raise problem(codes.UNAUTHORIZED, "This server needs credentials: send `Authorization: Bearer <token>` (or log "
                  "in on the page first).", 401)


def require(scope: str) -> Callable[..., Caller]:
    """A FastAPI dependency: the caller, who must hold `scope` (admin holds every scope)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope}")

    def dependency(request: Request,
                   credentials: HTTPAuthorizationCredentials | None = Security(bearer)) -> Caller:
        ctx = request.app.state.ctx
        caller = authenticate(request, credentials.credentials if credentials else None, ctx.settings, ctx.tokens,
                              ctx.gradio_auth)
        if scope not in caller.scopes and not caller.admin:
            raise problem(codes.FORBIDDEN, f"This {'token' if caller.via == 'token' else 'login'} lacks the "
                          f"'{scope}' scope this endpoint needs.", 403)
        return caller

    dependency.__name__ = f"require_{scope}"
    return dependency


def gradio_login_check(conn: HTTPConnection) -> str | None:
    """The user logged in on the page, from Gradio's login cookie (`access-token-<cookie_id>` or its
    `-unsecure-` twin, a key of `app.tokens`); the Gradio app is the one the mount wrapper recorded in the scope."""
    app = conn.scope.get(GRADIO_APP_SCOPE_KEY)
    if app is None or (getattr(app, "auth", None) is None and getattr(app, "auth_dependency", None) is None):
        return None
    cookie_id = getattr(app, "cookie_id", None)
    value = conn.cookies.get(f"access-token-{cookie_id}") or conn.cookies.get(f"access-token-unsecure-{cookie_id}")
    if not value:
        return None
    user = getattr(app, "tokens", {}).get(value)
    return str(user) if user else None


GRADIO_APP_SCOPE_KEY = "svc.gradio_app"  # set by app.mounted_beside_gradio
