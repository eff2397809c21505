"""The dashboard in headless Chromium against a real `hub serve`: log in, live quotes, orders,
cancel, a dropped connection recovered through `since`, the SSE fallback, the price chart (history,
timeframes, live bars), a phone-sized screen, and not one console error or CSP violation."""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise
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
# The embedded feed sends 50 quotes/s over 34 symbols: a symbol's bar moves about every 0.7 s.
LIVE_MS = 15_000
# Reports every Content-Security-Policy violation as a console error, which fails the test.
CSP_WATCH = """document.addEventListener("securitypolicyviolation", (e) =>
  console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));"""


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
        wait_for_bar_history(running.url)
        yield running


def wait_for_bar_history(url: str) -> None:
    """The feed backfills its bar history in the background, after /readyz answers (the chart
    copes with a late history; the sparklines' assertion needs it in)."""
    deadline = time.monotonic() + 30
    while "hub_bars_live 1" not in httpx.get(url + "/metrics", timeout=5).text:
        assert time.monotonic() < deadline, "the bar history did not load in 30 s"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def browser(server: RunningServer) -> Iterator[Browser]:
    with sync_playwright() as pw:
        yield _launch(pw)


def _launch(pw: Playwright) -> Browser:
    return pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)


class Console:
    """Every console error and uncaught exception of a page (and CSP violation: CSP_WATCH).

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
    page.add_init_script(CSP_WATCH)
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


def chart_state(page: Page) -> dict[str, Any]:
    """What the price chart draws: its symbol and timeframe, and its candles."""
    state: dict[str, Any] = page.evaluate(
        """() => {
            const chart = window.hubApp.chart;
            const candles = chart.candles.data();
            return {symbol: chart.symbol, timeframe: chart.timeframe, ready: chart.ready,
                    count: candles.length, last: candles.at(-1) ?? null,
                    times: candles.map((c) => c.time)};
        }"""
    )
    return state


def wait_for_chart(page: Page, symbol: str, timeframe: str) -> dict[str, Any]:
    page.wait_for_function(
        "([s, tf]) => { const c = window.hubApp.chart; "
        "return c.ready && c.symbol === s && c.timeframe === tf; }",
        arg=[symbol, timeframe],
    )
    expect(page.locator("#chart canvas").first).to_be_visible()
    return chart_state(page)


SPAN_S = {"1Min": 60, "5Min": 300, "15Min": 900, "1Hour": 3600, "1Day": 25 * 3600}


def wait_for_live_candle(page: Page) -> dict[str, Any]:
    """The chart's newest candle moves (its close changes, or a new one opens) within a bounded
    wait, and it is the candle of the bucket forming now: live, not history."""
    before = chart_state(page)
    page.wait_for_function(
        "(b) => { const c = window.hubApp.chart.candles.data().at(-1); "
        "return c.time !== b.time || c.close !== b.close; }",
        arg=before["last"],
        timeout=LIVE_MS,
    )
    after = chart_state(page)
    now = time.time()
    assert now - SPAN_S[after["timeframe"]] - 5 <= after["last"]["time"] <= now + 5, after["last"]
    assert after["last"]["time"] >= before["last"]["time"]
    return after


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


def test_price_chart(page: Page, server: RunningServer) -> None:
    sent: list[str] = []
    received: list[str] = []

    def on_socket(ws: Any) -> None:
        ws.on("framesent", lambda payload: sent.append(str(payload)))
        ws.on("framereceived", lambda payload: received.append(str(payload)))

    page.on("websocket", on_socket)
    log_in(page, server.url)

    # The sparklines start from the last 90 one-minute bars, not from the first quote seen.
    spark = page.locator("#wl-rows tr[data-symbol='AAPL'] svg.spark polyline")
    assert len((spark.get_attribute("points") or "").split()) >= 60

    # The ticket's symbol is charted at once from the backfilled history...
    expect(page.locator("#chart-symbol")).to_have_text("AAPL")
    chart = wait_for_chart(page, "AAPL", "1Min")
    assert chart["count"] >= 200, chart["count"]
    times = chart["times"]
    assert times == sorted(set(times)) and all(t % 60 == 0 for t in times)
    expect(page.get_by_role("button", name="1 minute")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("link", name=re.compile("TradingView"))).to_have_attribute(
        "href", "https://www.tradingview.com/"
    )
    # ...and moves live, from `bars:AAPL`.
    assert page.evaluate("() => window.hubClient.channels.has('bars:AAPL')")
    wait_for_live_candle(page)
    expect(page.locator("#chart-legend")).to_contain_text(re.compile(r"O [0-9.]+ .* C [0-9.]+"))

    # The timeframe switch reads the history again; the live minute folds into the longer bar.
    # (A day is 23 to 25 hours long in New York.)
    for name, timeframe, least, gap in (
        ("5 minutes", "5Min", 100, 300),
        ("1 day", "1Day", 200, 23 * 3600),
    ):
        button = page.get_by_role("button", name=name, exact=True)
        with page.expect_response(re.compile(f"/bars\\?.*timeframe={timeframe}")) as answer:
            button.click()
        assert answer.value.status == 200
        expect(button).to_have_attribute("aria-pressed", "true")
        chart = wait_for_chart(page, "AAPL", timeframe)
        assert chart["count"] >= least, (timeframe, chart["count"])
        times = chart["times"]
        assert min(b - a for a, b in pairwise(times)) >= gap
        wait_for_live_candle(page)

    # Another symbol: its bar channel replaces the previous one's, in the same timeframe.
    page.locator("#wl-rows").get_by_role("button", name="MSFT", exact=True).click()
    expect(page.locator("#chart-symbol")).to_have_text("MSFT")
    expect(page.locator("#wl-rows tr[data-symbol='MSFT']")).to_have_class(re.compile("selected"))
    chart = wait_for_chart(page, "MSFT", "1Day")
    close = Decimal(str(chart["last"]["close"]))
    assert abs(close - last_price(page, "MSFT")) / close < Decimal("0.01")
    channels = page.evaluate("() => [...window.hubClient.channels]")
    assert "bars:MSFT" in channels and "bars:AAPL" not in channels
    assert any('"unsubscribe"' in f and "bars:AAPL" in f for f in sent), sent[-5:]
    wait_for_live_candle(page)
    # Once the server has confirmed, no more AAPL bars arrive.
    deadline = time.monotonic() + 5
    while not any('"unsubscribed"' in f and "bars:AAPL" in f for f in received):
        assert time.monotonic() < deadline, "the unsubscribe was not confirmed"
        page.wait_for_timeout(50)
    aapl_bars = sum('"channel":"bars:AAPL"' in f for f in received)
    page.wait_for_timeout(1500)
    assert sum('"channel":"bars:AAPL"' in f for f in received) == aapl_bars

    # The canvas follows the theme (it cannot read CSS variables by itself).
    background = "(card) => window.hubApp.chart.chart.options().layout.background.color === card"
    page.emulate_media(color_scheme="dark")
    page.wait_for_function(background, arg="#111a2e")
    page.emulate_media(color_scheme="light")
    page.wait_for_function(background, arg="#ffffff")

    # The vendored library is served from this origin, and the page's CSP is as strict as ever.
    module = httpx.get(
        server.url + "/static/vendor/lightweight-charts.standalone.production.mjs", timeout=5
    )
    assert module.status_code == 200 and "javascript" in module.headers["content-type"]
    csp = httpx.get(server.url + "/", timeout=5).headers["content-security-policy"]
    assert "script-src 'self';" in csp and "style-src 'self';" in csp and "unsafe" not in csp


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
    wait_for_chart(page, "AAPL", "1Min")
    wait_for_live_candle(page)  # bar events arrive over SSE too

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
