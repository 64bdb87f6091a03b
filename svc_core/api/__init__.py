"""The REST API (FastAPI, /api/v1): voices, conversions, covers, jobs (status, SSE events, cancel, results),
health and version, with API tokens; beside the page on its port (server.py) or alone (`python -m svc_core api`).

app.py (create_api, ApiContext, api_mount), errors.py (JSON errors), tokens.py (TokenStore), auth.py (who calls,
the rule when credentials are needed), uploads.py (streamed multipart with limits), routes_voices.py,
routes_jobs.py, schemas.py (response models), setup.py (job service from settings), standalone.py, cli.py.
"""
