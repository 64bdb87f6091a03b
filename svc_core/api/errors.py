"""Every error the API answers is JSON `{"error": {"code": <stable code>, "message": <readable>}}`.

Codes come from svc_core/jobs/errors.py (the engine's errors map there too); this module adds the two that only
routing produces (`not_found` for an unknown path, `method_not_allowed`). FastAPI's own request validation errors
become `bad_request` (status 400) with the offending fields named.
"""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import SvcError
from ..jobs import errors as codes
from ..jobs.errors import JobError, error_status

log = logging.getLogger("svc_core.api")

NOT_FOUND = "not_found"  # no such path
METHOD_NOT_ALLOWED = "method_not_allowed"
ROUTING_CODES = (NOT_FOUND, METHOD_NOT_ALLOWED)
_HTTP_CODES = {400: codes.BAD_REQUEST, 401: codes.UNAUTHORIZED, 403: codes.FORBIDDEN, 404: NOT_FOUND,
               405: METHOD_NOT_ALLOWED, 413: codes.FILE_TOO_LARGE, 503: codes.BUSY}


class ApiProblem(JobError):
    """An error the API answers with `status` and `code` (the contract's ApiProblem: a JobError with both)."""


def problem(code: str, message: str, status: int) -> ApiProblem:
    return ApiProblem(message, code=code, status=status)


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def error_response(code: str, message: str, status: int, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for item in exc.errors():
        where = ".".join(str(p) for p in item.get("loc", ()) if p not in ("body", "query", "path", "header"))
        parts.append(f"{where or 'request'}: {item.get('msg', 'invalid')}")
    return "Bad request: " + "; ".join(parts) if parts else "Bad request."


def install_error_handlers(app: FastAPI) -> None:
    """Map SvcError (JobError included), validation errors, HTTP errors and anything unexpected to the JSON shape."""

    @app.exception_handler(SvcError)
    async def svc_error(request: Request, exc: SvcError) -> JSONResponse:
        code, status = error_status(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        retry_after = getattr(exc, "retry_after", None)  # jobs.limits.Busy: 429, when to try again
        if retry_after is not None:
            headers = {"Retry-After": str(int(retry_after))}
        return error_response(code, str(exc), status, headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(codes.BAD_REQUEST, _validation_message(exc), 400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, codes.BAD_REQUEST if exc.status_code < 500 else codes.INTERNAL)
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        if exc.status_code == 404 and message == "Not Found":
            message = f"No such endpoint: {request.method} {request.url.path}."
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}."
        return error_response(code, message, exc.status_code, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        return error_response(codes.INTERNAL, "Internal error; the server log has the details.", 500)
