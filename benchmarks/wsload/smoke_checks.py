"""What the wsload smoke checks share: the check list, the quotes the test servers send, and
wsload (harness.wsload's driver) as an async context manager that checks its exit."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from harness import wsload

SUBSCRIBED = '[{"type":"subscribed","channel":"quotes"},{"type":"subscribed","channel":"trades"}]'
AUTH = '{"type":"auth","token":"smoke"}'
SUBSCRIBE = '{"type":"subscribe","channels":["quotes","trades"]}'

RESULTS: list[tuple[str, bool, str]] = []


def check(name: str, ok: bool, detail: str = "") -> None:
    RESULTS.append((name, bool(ok), detail))
    print(f"  [{'ok' if ok else 'FAIL'}] {name}{': ' + detail if detail else ''}", flush=True)


def iso_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def quote_iso() -> str:
    q = json.dumps({"type": "quote", "data": {"timestamp": iso_now()}}, separators=(",", ":"))
    return f"[{q},{q}]"  # two deliveries per message, constant length


def quote_num() -> str:
    q = json.dumps({"type": "quote", "data": {"t": 0}}, separators=(",", ":"))
    q = q.replace('"t":0', f'"t":{time.time():.6f}')
    return f"[{q},{q}]"


class Gate:
    """Holds every connection until `n` have arrived, then 0.3 s more, so that wsload reports
    "ready" before data flows."""

    def __init__(self, n: int) -> None:
        self.n, self.count, self.all_in = n, 0, asyncio.Event()

    async def wait(self) -> None:
        self.count += 1
        if self.count == self.n:
            self.all_in.set()
        await self.all_in.wait()
        await asyncio.sleep(0.3)


class WsLoad:
    """One wsload process on /ws, its stderr kept; on exit it is told to quit, and (unless the
    block raised) checked to exit with 0."""

    def __init__(self, exe: Path, port: int, clients: int, *args: str) -> None:
        self.exe, self.port, self.clients = exe, port, clients
        self.args = ["--path", "/ws", *args]

    async def __aenter__(self) -> WsLoad:
        self.driver = await wsload.WsLoad.start(
            self.exe, self.port, self.clients, *self.args, capture_stderr=True
        )
        self.proc = self.driver.proc
        return self

    async def ready(self, wait_s: float = 30) -> dict[str, Any]:
        ev = await self.driver.event(wait_s)
        assert ev["event"] == "ready", ev
        return ev

    async def stats(self) -> dict[str, Any]:
        ev = await self.driver.stats(10)
        assert ev["event"] == "stats", ev
        return ev

    async def __aexit__(self, *exc: object) -> None:
        running = self.proc.returncode is None
        rc = await self.driver.stop(5)
        if running and exc[0] is None:
            check("quit -> exit 0", rc == 0, f"rc={rc}")
        stderr = self.driver.stderr
        for line in stderr[:4]:
            print(f"    wsload stderr: {line}")
        if len(stderr) > 4:
            print(f"    wsload stderr: ... {len(stderr) - 4} more lines")


def build(directory: Path) -> Path:
    """The benchmarks' own build of wsload, checked to compile without a warning."""
    try:
        exe, warnings = wsload.build(directory)
    except RuntimeError as exc:
        check("build: zero warnings", False, str(exc))
        sys.exit(1)
    check("build: zero warnings", not warnings, warnings)
    return exe
