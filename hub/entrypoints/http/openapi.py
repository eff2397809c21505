"""OpenAPI 3.1 built from the operation table and the msgspec schemas, and offline /docs
(Swagger UI shipped by the swagger-ui-bundle package, no CDN)."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

import hub
from hub.entrypoints.http.problems import MEDIA_TYPE, Problem
from hub.entrypoints.http.routing import Operation

REF = "#/components/schemas/{name}"


def build(operations: list[Operation]) -> dict[str, Any]:
    types: list[Any] = [Problem]
    for op in operations:
        types += [t for t in (op.request, op.response) if t is not None]
    schemas, components = msgspec.json.schema_components(types, ref_template=REF)
    refs = dict(zip(types, schemas, strict=True))
    problem_ref = {"content": {MEDIA_TYPE: {"schema": refs[Problem]}}}

    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        responses: dict[str, Any] = {}
        if op.response is not None:
            responses[str(op.status)] = {
                "description": "OK",
                "content": {"application/json": {"schema": refs[op.response]}},
            }
        else:
            responses[str(op.status if op.status != 200 else 204)] = {"description": "No content"}
        for status in op.errors:
            responses[str(status)] = {"description": "Problem details (RFC 9457)", **problem_ref}
        item: dict[str, Any] = {
            "summary": op.summary,
            "operationId": f"{op.method.lower()}_{op.path.strip('/').replace('/', '_')}",
            "tags": list(op.tags),
            "responses": responses,
        }
        parameters: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"{(\w+)}", op.path)
        ]
        parameters += [
            {
                "name": p.name,
                "in": p.where,
                "required": p.required,
                "description": p.description,
                "schema": p.schema,
            }
            for p in op.query
        ]
        if parameters:
            item["parameters"] = parameters
        if op.request is not None:
            item["requestBody"] = {
                "required": not op.optional_body,
                "content": {"application/json": {"schema": refs[op.request]}},
            }
        if op.auth:
            item["security"] = [{"bearer": []}]
        paths.setdefault(op.path, {})[op.method.lower()] = item

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Hub",
            "version": hub.__version__,
            "description": "Real-time brokerage backend. Errors are RFC 9457 problem details "
            "with a stable `code`. Money is a decimal string.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


async def openapi_json(request: Request) -> Response:
    return Response(request.app.state.openapi, media_type="application/json")


_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Hub API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
</body></html>"""


async def docs(request: Request) -> HTMLResponse:
    return HTMLResponse(_DOCS_PAGE)
