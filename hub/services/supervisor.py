"""The order supervisor, run by exactly one process at a time: it keeps the trigger index of
resting orders current, turns quotes into TRIGGER work, re-drives orders stuck in pending_new or
pending_cancel (a lost message, a crashed worker), and expires day orders at the close.

The database is the source of truth: the index is rebuilt from it at start and refreshed from
the orders changed since the last look, so no order event needs to reach this process for the
index to be right; the delay is one refresh interval.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import structlog

from hub.domain.calendar import MarketCalendar, day_order_expired
from hub.domain.orders import MATCHABLE_STATUSES, Order, OrderStatus
from hub.domain.quotes import Quote
from hub.services import messages
from hub.services.market_data import MarketDataService
from hub.services.messages import Action, OrderMessage
from hub.services.ports import Clock
from hub.services.trading_ports import TradingReader, WorkQueue
from hub.services.triggers import TriggerIndex

log = structlog.get_logger("hub.supervisor")

OVERLAP = timedelta(seconds=1)  # re-read a little of the past: commits land out of order


class OrderSupervisor:
    def __init__(
        self,
        *,
        reader: TradingReader,
        queue: WorkQueue,
        market_data: MarketDataService,
        calendar: MarketCalendar,
        clock: Clock,
        refresh_interval: float = 0.2,
        sweep_interval: float = 5.0,
        stuck_after: timedelta = timedelta(seconds=15),
    ) -> None:
        self._reader = reader
        self._queue = queue
        self._market_data = market_data
        self._calendar = calendar
        self._clock = clock
        self._refresh_interval = refresh_interval
        self._sweep_interval = sweep_interval
        self._stuck_after = stuck_after
        self.index = TriggerIndex()
        self._watermark: datetime | None = None
        self.triggers = 0
        self.redriven = 0
        self.expired = 0
        self.active = False

    def stats(self) -> dict[str, int]:
        return {
            "triggers": self.triggers,
            "redriven": self.redriven,
            "expired": self.expired,
            "resting_orders": len(self.index),
        }

    async def on_quote(self, quote: Quote) -> None:
        if not self.active:
            return
        for order_id in self.index.on_quote(quote):
            self.triggers += 1
            await self._send(OrderMessage(order_id, Action.TRIGGER, quote.symbol))

    async def run(self) -> None:
        started = self._clock.now()
        working = await self._reader.working_orders()
        self.index.update(working)
        self._watermark = started
        self.active = True
        log.info("order supervisor active", resting=len(self.index))
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()
        try:
            while True:
                await asyncio.sleep(self._refresh_interval)
                await self.refresh()
                if loop.time() >= next_sweep:
                    await self.sweep()
                    next_sweep = loop.time() + self._sweep_interval
        finally:
            self.active = False

    async def refresh(self) -> None:
        now = self._clock.now()
        since = (self._watermark or now) - OVERLAP
        self.index.update(await self._reader.orders_changed(since))
        self._watermark = now

    async def sweep(self) -> None:
        now = self._clock.now()
        working = await self._reader.working_orders()
        symbols = sorted({o.symbol for o in working})
        instruments = await self._market_data.instruments(symbols) if symbols else {}
        for order in working:
            action = self._overdue(order, now)
            if (
                action is None
                and order.status in MATCHABLE_STATUSES
                and order.symbol in instruments
            ):
                category = instruments[order.symbol].category
                if day_order_expired(order, category, self._calendar, now):
                    action = Action.EXPIRE
                    self.expired += 1
            if action is not None:
                await self._send(OrderMessage(order.id, action, order.symbol))

    def _overdue(self, order: Order, now: datetime) -> Action | None:
        if now - order.updated_at < self._stuck_after:
            return None
        if order.status is OrderStatus.PENDING_NEW:
            self.redriven += 1
            return Action.PROCESS
        if order.status is OrderStatus.PENDING_CANCEL:
            self.redriven += 1
            return Action.CANCEL
        return None

    async def _send(self, message: OrderMessage) -> None:
        try:
            await self._queue.publish(messages.encode(message))
        except Exception as exc:
            # Harmless to lose: the next quote or sweep sends it again.
            log.warning(
                "supervisor could not publish", order_id=str(message.order_id), error=repr(exc)
            )
