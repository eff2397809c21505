"""GET /healthz (the process answers), /readyz (every configured dependency answers), /metrics."""

from __future__ import annotations

import asyncio

import msgspec
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from hub.entrypoints.http.routing import Call, Operation, operation
from hub.entrypoints.http.schemas import DependencyState, Health, Readiness

CHECK_TIMEOUT_S = 2.0


async def healthz(call: Call) -> Health:
    return Health("ok")


async def readyz(call: Call) -> Response:
    names = list(call.hub.readiness)
    results = await asyncio.gather(
        *(asyncio.wait_for(call.hub.readiness[n](), CHECK_TIMEOUT_S) for n in names),
        return_exceptions=True,
    )
    checks = {
        name: DependencyState("up")
        if not isinstance(result, BaseException)
        else DependencyState("down", f"{type(result).__name__}: {result}".rstrip(": "))
        for name, result in zip(names, results, strict=True)
    }
    ready = all(state.status == "up" for state in checks.values())
    body = Readiness("ready" if ready else "not_ready", call.hub.settings.mode.value, checks)
    return Response(msgspec.json.encode(body), 200 if ready else 503, media_type="application/json")


async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)


OPERATIONS: list[Operation] = [
    operation(
        "GET",
        "/healthz",
        healthz,
        "Liveness: the process answers",
        response=Health,
        auth=False,
        tags=("operations",),
    ),
    operation(
        "GET",
        "/readyz",
        readyz,
        "Readiness of each configured dependency (503 if one is down)",
        response=Readiness,
        auth=False,
        tags=("operations",),
        errors=(503,),
    ),
]
