"""The order path as a client sees it, with quotes the test controls: run on the embedded
wiring (tests/unit) and on Postgres + Redis + RabbitMQ (tests/integration). A subclass provides
the `desk` fixture."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from starlette.testclient import TestClient

from hub.bootstrap import Container
from hub.domain.quotes import Quote
from tests.http_suite import assert_problem, bearer, signup


@dataclass
class Desk:
    client: TestClient

    @property
    def hub(self) -> Container:
        container: Container = self.client.app.state.hub  # type: ignore[attr-defined]
        return container

    def quote(self, symbol: str, bid: str, ask: str, last: str | None = None) -> Quote:
        b, a = Decimal(bid), Decimal(ask)
        q = Quote(
            symbol=symbol,
            bid=b,
            ask=a,
            last=Decimal(last) if last else (b + a) / 2,
            bid_size=Decimal(100),
            ask_size=Decimal(100),
            open=b,
            high=a,
            low=b,
            prev_close=b,
            timestamp=datetime.now(UTC),
        )
        assert self.client.portal is not None
        self.client.portal.call(self.hub.workers.quotes.put, q)
        self.client.portal.call(self.hub.workers.supervisor.on_quote, q)
        return q

    def trader(self) -> dict[str, str]:
        return bearer(signup(self.client))

    def submit(self, auth: dict[str, str], **order: Any) -> Any:
        body = {"time_in_force": "gtc", **order}
        return self.client.post("/api/v1/orders", json=body, headers=auth)

    def wait(
        self,
        auth: dict[str, str],
        order_id: str,
        done: Callable[[dict[str, Any]], bool],
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            order: dict[str, Any] = self.client.get(
                f"/api/v1/orders/{order_id}", headers=auth
            ).json()
            if done(order):
                return order
            assert time.monotonic() < deadline, f"order stuck: {order}"
            time.sleep(0.02)

    def account(self, auth: dict[str, str]) -> dict[str, Any]:
        account: dict[str, Any] = self.client.get("/api/v1/account", headers=auth).json()
        return account


def status_is(*statuses: str) -> Callable[[dict[str, Any]], bool]:
    return lambda order: order["status"] in statuses


class OrdersContract:
    def test_market_buy_fills_at_the_ask_and_moves_cash(self, desk: Desk) -> None:
        desk.quote("AAPL", "99.98", "100.02")
        auth = desk.trader()
        r = desk.submit(auth, symbol="AAPL", side="buy", type="market", qty="10")
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "pending_new"
        order = desk.wait(auth, r.json()["id"], status_is("filled"))
        assert Decimal(order["filled_avg_price"]) == Decimal("100.02")
        assert Decimal(order["filled_qty"]) == 10
        account = desk.account(auth)
        assert account["cash"] == "98999.80"
        assert account["reserved_cash"] == "0.00"
        positions = desk.client.get("/api/v1/positions", headers=auth).json()
        assert [(p["symbol"], Decimal(p["qty"])) for p in positions] == [("AAPL", Decimal(10))]
        events = desk.client.get(f"/api/v1/orders/{order['id']}/events", headers=auth).json()
        assert [e["type"] for e in events] == ["new", "accepted", "fill"]

    def test_sell_releases_shares_and_books_the_proceeds(self, desk: Desk) -> None:
        desk.quote("MSFT", "199.99", "200.01")
        auth = desk.trader()
        buy = desk.submit(auth, symbol="MSFT", side="buy", type="market", qty="5").json()
        desk.wait(auth, buy["id"], status_is("filled"))
        desk.quote("MSFT", "210.00", "210.02")
        sell = desk.submit(auth, symbol="MSFT", side="sell", type="market", qty="5").json()
        desk.wait(auth, sell["id"], status_is("filled"))
        account = desk.account(auth)
        assert Decimal(account["cash"]) == Decimal("100000") - Decimal("1000.05") + Decimal("1050")
        portfolio = desk.client.get("/api/v1/portfolio", headers=auth).json()
        assert portfolio["positions"] == []

    def test_resting_limit_rests_then_cancels_and_releases(self, desk: Desk) -> None:
        desk.quote("AAPL", "99.98", "100.02")
        auth = desk.trader()
        r = desk.submit(
            auth, symbol="AAPL", side="buy", type="limit", qty="10", limit_price="95.00"
        )
        order = desk.wait(auth, r.json()["id"], status_is("new"))
        assert desk.account(auth)["reserved_cash"] == "950.00"
        assert desk.account(auth)["buying_power"] == "99050.00"
        r = desk.client.delete(f"/api/v1/orders/{order['id']}", headers=auth)
        assert r.status_code == 202
        assert r.json()["status"] == "pending_cancel"
        desk.wait(auth, order["id"], status_is("canceled"))
        assert desk.account(auth)["reserved_cash"] == "0.00"
        again = desk.client.delete(f"/api/v1/orders/{order['id']}", headers=auth)
        assert_problem(again, 422, "not_cancelable")

    def test_quote_crossing_a_resting_limit_fills_it(self, desk: Desk) -> None:
        desk.quote("AMZN", "99.98", "100.02")
        auth = desk.trader()
        r = desk.submit(auth, symbol="AMZN", side="buy", type="limit", qty="3", limit_price="99.50")
        oid = r.json()["id"]
        desk.wait(auth, oid, status_is("new"))
        self._until_resting(desk, oid)
        desk.quote("AMZN", "99.40", "99.45")
        order = desk.wait(auth, oid, status_is("filled"))
        assert Decimal(order["filled_avg_price"]) == Decimal("99.45")  # the ask: price improvement

    def test_stop_triggers_on_the_way_down(self, desk: Desk) -> None:
        desk.quote("DIS", "99.98", "100.02")
        auth = desk.trader()
        buy = desk.submit(auth, symbol="DIS", side="buy", type="market", qty="4").json()
        desk.wait(auth, buy["id"], status_is("filled"))
        stop = desk.submit(
            auth, symbol="DIS", side="sell", type="stop", qty="4", stop_price="95.00"
        ).json()
        desk.wait(auth, stop["id"], status_is("new"))
        self._until_resting(desk, stop["id"])
        desk.quote("DIS", "96.00", "96.04")
        time.sleep(0.1)
        assert (
            desk.client.get(f"/api/v1/orders/{stop['id']}", headers=auth).json()["status"] == "new"
        )
        desk.quote("DIS", "94.90", "94.94", last="94.92")
        order = desk.wait(auth, stop["id"], status_is("filled"))
        assert Decimal(order["filled_avg_price"]) == Decimal("94.90")

    @staticmethod
    def _until_resting(desk: Desk, order_id: str) -> None:
        """The supervisor picks resting orders up from the store on its next refresh."""
        deadline = time.monotonic() + 5
        while uuid.UUID(order_id) not in desk.hub.workers.supervisor.index._where:
            assert time.monotonic() < deadline, "order never reached the trigger index"
            time.sleep(0.02)

    def test_pre_trade_checks(self, desk: Desk) -> None:
        desk.quote("AAPL", "99.98", "100.02")
        auth = desk.trader()
        cases: list[tuple[dict[str, Any], int, str]] = [
            (
                {"symbol": "AAPL", "side": "buy", "type": "market", "qty": "2000"},
                403,
                "insufficient_buying_power",
            ),
            (
                {"symbol": "AAPL", "side": "sell", "type": "market", "qty": "1"},
                403,
                "insufficient_shares",
            ),
            ({"symbol": "AAPL", "side": "buy", "type": "limit", "qty": "1"}, 422, "invalid_order"),
            (
                {
                    "symbol": "AAPL",
                    "side": "buy",
                    "type": "market",
                    "qty": "1",
                    "limit_price": "10",
                },
                422,
                "invalid_order",
            ),
            (
                {
                    "symbol": "AAPL",
                    "side": "buy",
                    "type": "limit",
                    "qty": "1",
                    "limit_price": "99.995",
                },
                422,
                "price_not_on_tick",
            ),
            (
                {
                    "symbol": "AAPL",
                    "side": "buy",
                    "type": "limit",
                    "qty": "1",
                    "limit_price": "50.00",
                },
                422,
                "price_outside_collar",
            ),
            (
                {"symbol": "AAPL", "side": "buy", "type": "market", "qty": "0.5"},
                422,
                "invalid_quantity",
            ),
            (
                {"symbol": "AAPL", "side": "buy", "type": "market", "qty": "-1"},
                422,
                "invalid_quantity",
            ),
            ({"symbol": "NOPE", "side": "buy", "type": "market", "qty": "1"}, 422, "invalid_order"),
            (
                {"symbol": "AAPL", "side": "hold", "type": "market", "qty": "1"},
                422,
                "validation_error",
            ),
            (
                {"symbol": "AAPL", "side": "buy", "type": "market", "qty": "1", "x": 1},
                422,
                "validation_error",
            ),
        ]
        for body, status, code in cases:
            assert_problem(desk.submit(auth, **body), status, code)
        assert desk.client.get("/api/v1/orders?status=all", headers=auth).json()["orders"] == []
        assert desk.account(auth)["reserved_cash"] == "0.00"

    def test_idempotency_key_replays_and_refuses_a_different_body(self, desk: Desk) -> None:
        desk.quote("AAPL", "99.98", "100.02")
        auth = desk.trader()
        keyed = {**auth, "Idempotency-Key": f"k-{uuid.uuid4()}"}
        body = {"symbol": "AAPL", "side": "buy", "type": "market", "qty": "1"}
        first = desk.client.post("/api/v1/orders", json=body, headers=keyed)
        # The replay answers as the first request was answered, not with the order as it is now.
        desk.wait(auth, first.json()["id"], status_is("filled"))
        second = desk.client.post(
            "/api/v1/orders", json=dict(reversed(body.items())), headers=keyed
        )
        assert first.status_code == second.status_code == 202
        assert second.content == first.content
        assert second.json()["status"] == "pending_new"
        assert second.headers["idempotent-replayed"] == "true"
        other = desk.client.post("/api/v1/orders", json={**body, "qty": "2"}, headers=keyed)
        assert_problem(other, 422, "idempotency_key_reused")
        orders = desk.client.get("/api/v1/orders?status=all", headers=auth).json()["orders"]
        assert len(orders) == 1

    def test_the_same_request_sent_concurrently_makes_one_order(self, desk: Desk) -> None:
        desk.quote("AAPL", "99.98", "100.02")
        auth = desk.trader()
        keyed = {**auth, "Idempotency-Key": f"k-{uuid.uuid4()}"}
        body = {
            "symbol": "AAPL",
            "side": "buy",
            "type": "limit",
            "qty": "1",
            "limit_price": "95.00",
            "time_in_force": "gtc",
        }
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(
                    lambda _: desk.client.post("/api/v1/orders", json=body, headers=keyed), range(8)
                )
            )
        assert {a.status_code for a in answers} == {202}
        assert len({a.json()["id"] for a in answers}) == 1
        orders = desk.client.get("/api/v1/orders?status=all", headers=auth).json()["orders"]
        assert len(orders) == 1

    def test_client_order_id_is_unique_per_account(self, desk: Desk) -> None:
        desk.quote("AAPL", "99.98", "100.02")
        alice, bob = desk.trader(), desk.trader()
        body = {
            "symbol": "AAPL",
            "side": "buy",
            "type": "limit",
            "qty": "1",
            "limit_price": "95.00",
            "client_order_id": "my-first",
        }
        assert desk.submit(alice, **body).status_code == 202
        assert_problem(desk.submit(alice, **body), 422, "duplicate_client_order_id")
        assert desk.submit(bob, **body).status_code == 202

    def test_other_users_orders_do_not_exist(self, desk: Desk) -> None:
        desk.quote("AAPL", "99.98", "100.02")
        alice, mallory = desk.trader(), desk.trader()
        order = desk.submit(
            alice, symbol="AAPL", side="buy", type="limit", qty="1", limit_price="95.00"
        ).json()
        for method in ("GET", "DELETE"):
            r = desk.client.request(method, f"/api/v1/orders/{order['id']}", headers=mallory)
            assert_problem(r, 404, "not_found")
        assert_problem(
            desk.client.get("/api/v1/orders/not-a-uuid", headers=alice), 404, "not_found"
        )
        listed = desk.client.get("/api/v1/orders?status=all", headers=mallory).json()
        assert listed["orders"] == []

    def test_listing_filters_and_pages(self, desk: Desk) -> None:
        desk.quote("AAPL", "99.98", "100.02")
        auth = desk.trader()
        ids = [
            desk.submit(
                auth, symbol="AAPL", side="buy", type="limit", qty="1", limit_price="95.00"
            ).json()["id"]
            for _ in range(5)
        ]
        page = desk.client.get("/api/v1/orders?status=open&limit=2", headers=auth).json()
        seen = [o["id"] for o in page["orders"]]
        while page["next_cursor"]:
            page = desk.client.get(
                f"/api/v1/orders?status=open&limit=2&cursor={page['next_cursor']}", headers=auth
            ).json()
            seen += [o["id"] for o in page["orders"]]
        assert seen == ids[::-1]
        closed = desk.client.get("/api/v1/orders?status=closed", headers=auth).json()
        assert closed["orders"] == []
        for query in ("status=bogus", "limit=0", "limit=501", "cursor=%%%", "after=yesterday"):
            assert_problem(
                desk.client.get(f"/api/v1/orders?{query}", headers=auth), 422, "validation_error"
            )

    def test_cash_and_shares_reconcile_after_a_session(self, desk: Desk) -> None:
        desk.quote("AAPL", "99.98", "100.02")
        auth = desk.trader()
        ids = []
        for i in range(6):
            side = "buy" if i % 3 != 2 else "sell"
            r = desk.submit(auth, symbol="AAPL", side=side, type="market", qty="2")
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
            desk.wait(auth, ids[-1], status_is("filled"))
        cash = Decimal(100000)
        shares = Decimal(0)
        for oid in ids:
            for event in desk.client.get(f"/api/v1/orders/{oid}/events", headers=auth).json():
                if event["type"] == "fill":
                    o = event["order"]
                    value = Decimal(o["filled_qty"]) * Decimal(o["filled_avg_price"])
                    sign = -1 if o["side"] == "buy" else 1
                    cash += sign * value
                    shares -= sign * Decimal(o["filled_qty"])
        account = desk.account(auth)
        assert Decimal(account["cash"]) == cash.quantize(Decimal("0.01"))
        positions = desk.client.get("/api/v1/positions", headers=auth).json()
        assert Decimal(positions[0]["qty"]) == shares == 4
