"""The OpenAPI schema checked in at docs/openapi.json is the one a running server serves (regenerate it with
`python -m svc_core api --print-schema docs/openapi.json`), and it describes what a client generator needs."""
from __future__ import annotations

import json

from api_support import ROOT

SCHEMA_FILE = ROOT / "docs" / "openapi.json"


def test_repo_schema_equals_served(api):
    with api.client() as c:
        served = c.get("/openapi.json")
    assert served.status_code == 200
    assert json.loads(SCHEMA_FILE.read_text(encoding="utf-8")) == served.json(), (
        "docs/openapi.json is stale: run python -m svc_core api --print-schema docs/openapi.json")


def test_schema_describes_bodies_errors_and_auth():
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert schema["servers"] == [{"url": "/api/v1"}]
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            assert operation.get("summary"), f"{method} {path} has no summary"
            if path != "/health":
                assert "401" in operation["responses"], f"{method} {path} lists no 401"
                assert operation["responses"]["401"]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorResponse"}
    submit = schema["paths"]["/conversions"]["post"]
    form = submit["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["audio", "options"] and form["properties"]["audio"]["format"] == "binary"
    assert submit["responses"]["202"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Job"}
    assert {"Idempotency-Key"} <= {p["name"] for p in submit["parameters"]}
