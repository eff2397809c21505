"""The trading dashboard: GET / (the page), /static/... (its ES modules, styles and icon, served
from hub/static with no build step) and GET /dashboard/config.json (what the login form may
prefill). The page talks to Hub only through the public REST and streaming APIs."""

from __future__ import annotations

import os
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from hub.bootstrap import DEMO_EMAIL, DEMO_PASSWORD
from hub.config import Mode, Settings

STATIC = Path(__file__).resolve().parents[2] / "static"

# Everything the page loads comes from this origin: no CDN, no inline script or style.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class _Revalidated(StaticFiles):
    """Static files that the browser revalidates (ETag) on every load, so an upgraded server
    never runs a page against stale modules."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


async def page(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers=_PAGE_HEADERS)


def client_config(settings: Settings) -> dict[str, str]:
    """The demo credentials exist only in embedded mode with the demo user enabled."""
    config = {"mode": settings.mode.value}
    if settings.mode is Mode.EMBEDDED and settings.demo:
        config |= {"demo_email": DEMO_EMAIL, "demo_password": DEMO_PASSWORD}
    return config


async def config_json(request: Request) -> Response:
    settings: Settings = request.app.state.hub.settings
    return JSONResponse(client_config(settings), headers={"Cache-Control": "no-store"})


ROUTES: list[BaseRoute] = [
    Route("/", page, methods=["GET"], name="dashboard"),
    Route("/dashboard/config.json", config_json, methods=["GET"], name="dashboard-config"),
    Mount("/static", _Revalidated(directory=str(STATIC)), name="static"),
]
