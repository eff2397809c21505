"""The dashboard in headless Chromium against a real `hub serve`: log in, live quotes, orders,
cancel, a dropped connection recovered through `since`, the SSE fallback, a phone-sized screen,
and not one console error."""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import RunningServer, hub_serve

try:
    from playwright.sync_api import (
        Browser,
        ConsoleMessage,
        Page,
        Playwright,
        WebSocketRoute,
        expect,
        sync_playwright,
    )
    from playwright.sync_api import Error as PlaywrightError
except ImportError:  # pragma: no cover - reported by the `chromium` fixture
    sync_playwright = None  # type: ignore[assignment]

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("HUB_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
TIMEOUT_MS = 10_000


def _require_chromium() -> None:
    """Skip without Chromium or Playwright; under CI=true their absence is a failure."""
    missing = None
    if sync_playwright is None:
        missing = "the playwright package is not installed (pip install -e '.[test]')"
    elif not os.access(CHROMIUM, os.X_OK):
        missing = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    if missing is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{missing} (CI=true: browser tests never skip)")
    pytest.skip(missing)


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    _require_chromium()
    with hub_serve() as running:
        yield running


@pytest.fixture(scope="module")
def browser(server: RunningServer) -> Iterator[Browser]:
    with sync_playwright() as pw:
        yield _launch(pw)


def _launch(pw: Playwright) -> Browser:
    return pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)


class Console:
    """Every console error and uncaught exception of a page.

    Chromium itself logs "Failed to load resource" for every 4xx answer; those the test provokes
    on purpose (a rejected order, an expired token) are allowed while declared with
    `expect_http`. The page's own code never logs an error."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        self.expected: list[tuple[int, str]] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def expect_http(self, status: int, path: str) -> None:
        """Allow Chromium's log of `status` answers to URLs under `path` until `settle()`."""
        self.expected.append((status, path))

    def settle(self) -> None:
        self.expected.clear()

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        url = str(message.location.get("url", ""))
        for status, path in self.expected:
            if f"status of {status} " in message.text and path in url:
                return
        self.errors.append(f"{message.text} ({url})")


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    console = Console(page)
    page.hub_console = console  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        with contextlib.suppress(PlaywrightError):
            page.screenshot(path=ARTIFACTS / f"{request.node.name}-final.png", full_page=True)
        context.close()
    assert console.errors == [], "console errors:\n" + "\n".join(console.errors)


# --- helpers ------------------------------------------------------------------------------


def log_in(page: Page, url: str) -> None:
    page.goto(url + "/")
    # Embedded mode with the demo user: the form is filled in for us.
    expect(page.get_by_label("Email")).to_have_value("demo@hub.local")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#app-view")).to_be_visible()
    expect(page.locator("#wl-rows tr[data-symbol='AAPL'] .last")).not_to_have_text("—")


def console(page: Page) -> Console:
    found: Console = page.hub_console  # type: ignore[attr-defined]
    return found


def last_price(page: Page, symbol: str) -> Decimal:
    return Decimal(page.locator(f"#wl-rows tr[data-symbol='{symbol}'] .last").inner_text())


def access_token(page: Page) -> str:
    token: str = page.evaluate("JSON.parse(sessionStorage.getItem('hub.session')).access_token")
    return token


def submit_over_rest(url: str, token: str, body: dict[str, str]) -> dict[str, Any]:
    """Another client of the same user places an order (and it fills) while the page is away."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as http:
        r = http.post("/api/v1/orders", json=body)
        assert r.status_code == 202, r.text
        order: dict[str, Any] = r.json()
        deadline = time.monotonic() + 5
        while order["status"] not in ("filled", "canceled", "rejected", "expired"):
            assert time.monotonic() < deadline, f"order did not finish: {order}"
            time.sleep(0.05)
            order = http.get(f"/api/v1/orders/{order['id']}").json()
        return order


def order_row(page: Page, table: str, order_id: str) -> Any:
    return page.locator(f"#{table}-rows tr[data-order-id='{order_id}']")


def place_from_ticket(page: Page) -> str:
    """Submit the ticket; return the accepted order's id."""
    previous = page.evaluate("window.hubApp.lastSubmitted ?? null")
    page.locator("#t-submit").click()
    # Wait for the POST's answer, not for the order to appear: its first event can arrive on the
    # socket before the response, while lastSubmitted still names the previous order.
    # A function, not an expression: the page's CSP forbids eval().
    page.wait_for_function("(p) => (window.hubApp.lastSubmitted ?? null) !== p", arg=previous)
    order_id: str = page.evaluate("window.hubApp.lastSubmitted")
    return order_id


def drop_and_recover(page: Page, url: str, body: dict[str, str]) -> dict[str, Any]:
    """Drop the live connection, fill an order meanwhile, and see the page recover it."""
    recoveries: int = page.evaluate("window.hubClient.stats.recoveries")
    page.evaluate("window.hubClient.dropConnection({holdMs: 1500})")
    expect(page.locator("#conn")).to_have_attribute("data-state", "reconnecting")
    missed = submit_over_rest(url, access_token(page), body)
    assert missed["status"] == "filled"
    assert page.evaluate(f"window.hubApp.orders.has('{missed['id']}')") is False
    row = order_row(page, "hist", missed["id"])
    expect(row.locator("td.status")).to_have_attribute("data-status", "filled")
    stats = page.evaluate("window.hubClient.stats")
    assert stats["recoveries"] > recoveries
    assert stats["replayed"] >= 1  # it came back through `since`, not a REST re-read
    return missed


# --- tests --------------------------------------------------------------------------------


def test_trading_journey(page: Page, server: RunningServer) -> None:
    log_in(page, server.url)
    expect(page.locator("#conn")).to_have_attribute("data-state", "connected")
    expect(page.locator("#conn-text")).to_have_text("Live")

    # Quotes move, and the sparkline draws.
    first = last_price(page, "AAPL")
    page.wait_for_function(
        "(p) => document.querySelector(\"#wl-rows tr[data-symbol='AAPL'] .last\")"
        ".textContent !== p",
        arg=str(first),
    )
    expect(page.locator("#wl-rows tr[data-symbol='AAPL'] svg.spark polyline")).to_have_count(1)

    # A market buy, entered with the keyboard only: it fills and the position appears.
    page.get_by_label("Symbol", exact=True).fill("AAPL")
    page.get_by_label("Quantity").fill("3")
    page.get_by_label("Quantity").press("Enter")
    expect(page.locator("#t-result")).to_contain_text("filled")
    filled_id: str = page.evaluate("window.hubApp.lastSubmitted")
    expect(order_row(page, "hist", filled_id).locator("td.status")).to_have_text("filled")
    position = page.locator("#pos-rows tr[data-symbol='AAPL']")
    expect(position.locator(".qty")).to_have_text("3")
    expect(page.locator("#pf-mv")).not_to_have_text("$0.00")

    # A limit order 5% under the market rests; cancel it.
    page.get_by_label("Type").select_option("limit")
    expect(page.get_by_label("Stop price")).to_be_hidden()
    limit = (last_price(page, "AAPL") * Decimal("0.95")).quantize(Decimal("0.01"), ROUND_HALF_UP)
    page.get_by_label("Limit price").fill(str(limit))
    page.get_by_label("Quantity").fill("2")
    resting_id = place_from_ticket(page)
    row = order_row(page, "open", resting_id)
    expect(row.locator("td.status")).to_have_attribute("data-status", "new")
    row.get_by_role("button", name=re.compile("^Cancel")).click()
    expect(row).to_have_count(0)
    expect(order_row(page, "hist", resting_id).locator("td.status")).to_have_text("canceled")

    # A rejected order shows the problem's detail.
    console(page).expect_http(422, "/api/v1/orders")
    page.get_by_label("Limit price").fill(str((limit / 2).quantize(Decimal("0.01"))))
    page.locator("#t-submit").click()
    expect(page.locator("#t-error")).to_contain_text("outside")
    console(page).settle()

    # An expired access token is refreshed once and the call retried, without a new login.
    page.evaluate("window.hubApp.api.tokens.access_token = 'expired.or.forged'")
    # Every call racing with it (a debounced portfolio read) gets its 401, then a retry.
    console(page).expect_http(401, "/api/v1/")
    page.get_by_label("Type").select_option("market")
    page.get_by_label("Quantity").fill("1")
    refreshed_id = place_from_ticket(page)
    expect(order_row(page, "hist", refreshed_id).locator("td.status")).to_have_text("filled")
    expect(page.locator("#login-view")).to_be_hidden()
    page.wait_for_timeout(300)  # the debounced portfolio read, if any
    console(page).settle()

    # The connection drops; an order fills meanwhile; it is recovered, not missed.
    missed = drop_and_recover(
        page, server.url, {"symbol": "MSFT", "side": "buy", "type": "market", "qty": "2"}
    )
    expect(page.locator("#conn")).to_have_attribute("data-state", "connected")
    expect(page.locator("#pos-rows tr[data-symbol='MSFT'] .qty")).to_have_text("2")
    assert missed["symbol"] == "MSFT"

    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#t-error").evaluate("e => e.textContent = ''")
    page.screenshot(path=ARTIFACTS / "dashboard-desktop.png", full_page=True)
    if os.environ.get("HUB_UPDATE_DOCS_SCREENSHOT"):  # the README's picture, on request only
        page.emulate_media(color_scheme="dark")
        page.wait_for_timeout(1000)  # a few more points on the sparklines
        page.screenshot(path=ROOT / "docs" / "dashboard.png", full_page=True)
        page.emulate_media(color_scheme="light")

    # A phone-sized screen: everything fits without horizontal scrolling.
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(200)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=ARTIFACTS / "dashboard-phone.png", full_page=True)

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.locator("#conn")).to_have_attribute("data-state", "closed")


def test_sse_fallback(page: Page, server: RunningServer) -> None:
    # A network that refuses WebSockets: the client falls back to Server-Sent Events.
    network = {"blocks_websockets": True}

    def websocket(ws: WebSocketRoute) -> None:
        if network["blocks_websockets"]:
            ws.close()
        else:
            ws.connect_to_server()

    page.route_web_socket(re.compile(r".*/ws$"), websocket)
    log_in(page, server.url)
    expect(page.locator("#conn")).to_have_attribute("data-state", "sse")
    expect(page.locator("#conn-text")).to_have_text("Live (SSE fallback)")

    first = last_price(page, "MSFT")
    page.wait_for_function(
        "(p) => document.querySelector(\"#wl-rows tr[data-symbol='MSFT'] .last\")"
        ".textContent !== p",
        arg=str(first),
    )
    page.get_by_label("Symbol", exact=True).fill("MSFT")
    page.get_by_label("Quantity").fill("1")
    order_id = place_from_ticket(page)
    expect(order_row(page, "hist", order_id).locator("td.status")).to_have_text("filled")

    drop_and_recover(
        page, server.url, {"symbol": "AMZN", "side": "buy", "type": "market", "qty": "1"}
    )
    expect(page.locator("#conn")).to_have_attribute("data-state", "sse")

    # WebSockets work again: the client's periodic retry moves it back off SSE.
    network["blocks_websockets"] = False
    page.evaluate("window.hubClient.upgradeAfter = 200; window.hubClient._scheduleUpgrade()")
    expect(page.locator("#conn")).to_have_attribute("data-state", "connected")
    drop_and_recover(
        page, server.url, {"symbol": "AMZN", "side": "sell", "type": "market", "qty": "1"}
    )


def test_logged_out_page_and_config(page: Page, server: RunningServer) -> None:
    config = httpx.get(server.url + "/dashboard/config.json", timeout=5).json()
    assert config == {
        "mode": "embedded",
        "demo_email": "demo@hub.local",
        "demo_password": "Demo-Trader-2026!",
    }
    page.goto(server.url + "/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    console(page).expect_http(401, "/api/v1/auth/login")
    page.get_by_label("Password").fill("Wrong-password-1!")
    page.get_by_label("Password").press("Enter")
    expect(page.locator("#login-error")).to_contain_text("incorrect")


def test_the_socket_renews_its_token_in_band(page: Page) -> None:
    """With 4 s access tokens, hubclient.js refreshes the token and sends it on the open socket
    before it expires: the same WebSocket stays open past several expiries (no 4003 close, no
    reconnect) and quotes keep arriving on it."""
    sockets: list[Any] = []
    frames: list[str] = []
    closed: list[bool] = []

    def on_socket(ws: Any) -> None:
        sockets.append(ws)
        ws.on("framereceived", lambda payload: frames.append(str(payload)))
        ws.on("close", lambda _: closed.append(True))

    with hub_serve({"HUB_ACCESS_TOKEN_TTL": "4"}) as short:
        page.on("websocket", on_socket)
        log_in(page, short.url)
        expect(page.locator("#conn")).to_have_attribute("data-state", "connected")
        # Three token lifetimes, polled rather than slept through.
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline and sum('"authenticated"' in f for f in frames) < 3:
            page.wait_for_timeout(250)
        renewals = sum('"authenticated"' in f for f in frames)
        assert renewals >= 3, f"only {renewals} in-band renewals in 12 s of 4 s tokens"
        assert len(sockets) == 1 and not closed, "the socket was closed or replaced"
        quotes_before = sum('"quote"' in f for f in frames)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and sum('"quote"' in f for f in frames) == quotes_before:
            page.wait_for_timeout(100)
        assert sum('"quote"' in f for f in frames) > quotes_before
