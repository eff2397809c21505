"""How many quote deliveries per second can one server process fan out to 1,000 WebSockets?

The same workload against Hub's streaming engine and its peers, in one run:

- hub:       streaming.Engine (memory broker) under uvicorn, clients subscribed to quotes:AAPL
- socketio:  python-socketio AsyncServer, clients in one room, `emit(room=...)`, under uvicorn
- starlette: a plain Starlette endpoint; the publisher awaits `send_text` for each client in turn
- node-ws:   Node.js `ws` (installed from npm into a temp dir), only if `node` and `npm` exist

Each server runs in its own process and publishes ~100-byte quotes (seeded) itself at a rate the
load client sets over stdin; every quote carries its publish time. One load client process holds
N WebSocket connections (a minimal asyncio client, so the client is not the bottleneck), measures
publish-to-receive latency and counts deliveries. The rate rises step by step until p99 latency
passes 50 ms or fewer than 95% of the expected deliveries arrive ("the knee").

Reported per candidate (median of --runs runs): deliveries/s at the knee, p50/p99 latency at a
fixed 20,000 deliveries/s, server RSS per idle connection, and the load client's CPU.

    python benchmarks/fanout.py                 # full: 1,000 clients, 3 runs
    python benchmarks/fanout.py --quick         # 200 clients, 1 run, short steps
    python benchmarks/fanout.py --only hub,starlette --out /tmp/fanout.json

Servers and the load client share the machine's cores; read the figures with that in mind.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness.cpu import busy_s
from harness.node import RATE_SERVER, install_node
from harness.rate_servers import CHANNEL, RateServer, start_rate_server
from harness.report import command_line, environment, load_average
from harness.stats import percentile_at_index as percentile
from harness.wsclient import Quote, WsClient, close_all, hub_messages

P99_LIMIT_MS = 50.0
FIXED_DELIVERIES = 20_000
PACKAGES = ("starlette", "uvicorn", "websockets", "msgspec", "python-socketio", "uvloop")

# --- the load client's side -----------------------------------------------------------------------


@dataclass
class Meter:
    """Latencies and counts of the current measurement window."""

    recording: bool = False
    count: int = 0
    latencies: list[float] = field(default_factory=list)

    def record(self, sent_at: float, now: float) -> None:
        if self.recording:
            self.count += 1
            self.latencies.append(now - sent_at)


_sio = msgspec.json.Decoder(tuple[str, Quote])
_plain = msgspec.json.Decoder(Quote)


def make_handler(candidate: str, meter: Meter) -> Callable[[WsClient, bytes], None]:
    """Per-candidate message parsing; marks the client ready once it is subscribed."""
    if candidate == "hub":

        def on_hub(client: WsClient, payload: bytes) -> None:
            now = time.time()
            for message in hub_messages.decode(payload):
                kind = message.type
                if kind == "quote" and message.data is not None:
                    meter.record(message.data.t, now)
                elif kind == "connected":
                    client.send(b'{"action":"subscribe","channels":["' + CHANNEL.encode() + b'"]}')
                elif kind == "subscribed" and not client.ready.done():
                    client.ready.set_result(None)

        return on_hub
    if candidate == "socketio":

        def on_sio(client: WsClient, payload: bytes) -> None:
            kind = payload[:2]
            if kind == b"42":
                now = time.time()
                meter.record(_sio.decode(payload[2:])[1].t, now)
            elif payload == b"2":
                client.send(b"3")  # engine.io pong
            elif kind[:1] == b"0":
                client.send(b"40")  # connect to the default namespace
            elif kind == b"40" and not client.ready.done():
                client.ready.set_result(None)

        return on_sio

    def on_plain(client: WsClient, payload: bytes) -> None:
        meter.record(_plain.decode(payload).t, time.time())

    return on_plain


PATHS = {
    "hub": "/ws",
    "socketio": "/socket.io/?EIO=4&transport=websocket",
    "starlette": "/ws",
    "node-ws": "/",
}


# --- orchestration ----------------------------------------------------------------------------


async def connect_all(server: RateServer, n: int, meter: Meter) -> list[WsClient]:
    loop = asyncio.get_running_loop()
    handler = make_handler(server.name, meter)
    headers = {"Authorization": "Bearer bench"} if server.name == "hub" else {}
    gate = asyncio.Semaphore(50)
    clients: list[WsClient] = []

    async def one() -> None:
        async with gate:
            plain = server.name in ("starlette", "node-ws")  # no subscribe step
            client = WsClient(PATHS[server.name], headers, handler, ready_on_open=plain)
            await loop.create_connection(lambda: client, "127.0.0.1", server.port)
            clients.append(client)

    await asyncio.gather(*(one() for _ in range(n)))
    async with asyncio.timeout(60):
        for client in clients:
            await client.ready
    return clients


async def measure(
    server: RateServer, meter: Meter, n: int, rate: float, seconds: float
) -> dict[str, Any]:
    """Publish at `rate` for a warm-up, then measure a window of `seconds`."""
    await server.rate(rate)
    await asyncio.sleep(min(1.0, seconds / 2))
    me, them = psutil.Process(), psutil.Process(server.process.pid)
    cpu0, server0, t0 = me.cpu_times(), them.cpu_times(), time.monotonic()
    meter.count, meter.latencies, meter.recording = 0, [], True
    await asyncio.sleep(seconds)
    meter.recording = False
    cpu1, server1, elapsed = me.cpu_times(), them.cpu_times(), time.monotonic() - t0
    await server.rate(0)
    await asyncio.sleep(0.5)  # let the backlog drain before the next step
    expected = rate * n
    delivered = meter.count / elapsed
    return {
        "rate": rate,
        "expected_per_s": expected,
        "deliveries_per_s": round(delivered),
        "p50_ms": round(percentile(meter.latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(meter.latencies, 0.99) * 1000, 2),
        "client_cpu_pct": round(100 * busy_s(cpu0, cpu1) / elapsed, 1),
        "server_cpu_pct": round(100 * busy_s(server0, server1) / elapsed, 1),
        "kept_up": delivered >= 0.95 * expected,
        "ok": delivered >= 0.95 * expected
        and percentile(meter.latencies, 0.99) * 1000 <= P99_LIMIT_MS,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


async def bench_candidate(
    name: str, args: argparse.Namespace, seed: int, node_dir: Path | None
) -> dict[str, Any]:
    server = await start_rate_server(name, seed, node_dir)
    meter = Meter()
    try:
        await asyncio.sleep(0.5)
        rss_before = server.rss()
        clients = await connect_all(server, args.clients, meter)
        await asyncio.sleep(1.0)
        rss_idle = server.rss()
        fixed = await measure(
            server, meter, args.clients, FIXED_DELIVERIES / args.clients, args.step
        )
        steps = []
        knee: int | None = None  # None: not even the first step met both bars
        sustained: int | None = None
        latency_ok = True
        for deliveries in args.steps:
            step = await measure(server, meter, args.clients, deliveries / args.clients, args.step)
            steps.append(step)
            # Keep climbing while deliveries keep up, so that the throughput ceiling is known
            # even when latency (sensitive to whatever else runs on the host) failed earlier.
            if not step["kept_up"]:
                break
            sustained = max(sustained or 0, step["deliveries_per_s"])
            latency_ok = latency_ok and step["ok"]
            if latency_ok:
                knee = max(knee or 0, step["deliveries_per_s"])
        close_all(clients)
        return {
            "candidate": name,
            "rss_per_idle_connection_kib": round((rss_idle - rss_before) / args.clients / 1024, 1),
            "at_20k": fixed,
            "knee_deliveries_per_s": knee,
            "max_sustained_deliveries_per_s": sustained,
            "steps": steps,
        }
    finally:
        await server.stop()


def host(node_versions: dict[str, str]) -> dict[str, Any]:
    found = environment(PACKAGES, note="servers and the load client share the same cores")
    if node_versions:
        found["versions"].update({"node": node_versions["node"], "ws (npm)": node_versions["ws"]})
    return found


def summarize(runs: list[list[dict[str, Any]]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name in [r["candidate"] for r in runs[0]]:
        rows = [r for run in runs for r in run if r["candidate"] == name]

        def med(get: Callable[[dict[str, Any]], float], rows: list[dict[str, Any]] = rows) -> float:
            return statistics.median(get(r) for r in rows)

        summary[name] = {
            "knee_deliveries_per_s": round(med(lambda r: r["knee_deliveries_per_s"] or 0)),
            "knee_per_run": [r["knee_deliveries_per_s"] for r in rows],
            "max_sustained_deliveries_per_s": round(
                med(lambda r: r["max_sustained_deliveries_per_s"] or 0)
            ),
            "p50_ms_at_20k": med(lambda r: r["at_20k"]["p50_ms"]),
            "p99_ms_at_20k": med(lambda r: r["at_20k"]["p99_ms"]),
            "delivered_at_20k": round(med(lambda r: r["at_20k"]["deliveries_per_s"])),
            "rss_per_idle_connection_kib": med(lambda r: r["rss_per_idle_connection_kib"]),
            "client_cpu_pct_at_20k": med(lambda r: r["at_20k"]["client_cpu_pct"]),
            "server_cpu_pct_at_20k": med(lambda r: r["at_20k"]["server_cpu_pct"]),
            "runs": len(rows),
        }
    return summary


async def main(args: argparse.Namespace) -> None:
    node_dir: Path | None = None
    node_versions: dict[str, str] = {}
    candidates = [c for c in args.only.split(",") if c]
    if "node-ws" in candidates:
        node_dir, node_versions = install_node(RATE_SERVER, ["ws@8"], "fanout-node-")
        if node_dir is None:
            candidates.remove("node-ws")
            print("node/npm not found: skipping node-ws", file=sys.stderr)
    load_at_start = load_average()
    runs = []
    try:
        for run in range(args.runs):
            results = []
            for name in candidates:
                print(f"run {run + 1}/{args.runs}: {name} ...", file=sys.stderr, flush=True)
                result = await bench_candidate(name, args, args.seed + run, node_dir)
                print(
                    f"  knee {result['knee_deliveries_per_s']}/s, "
                    f"sustained {result['max_sustained_deliveries_per_s']}/s, at 20k: "
                    f"p50 {result['at_20k']['p50_ms']} ms p99 {result['at_20k']['p99_ms']} ms, "
                    f"rss/conn {result['rss_per_idle_connection_kib']} KiB",
                    file=sys.stderr,
                    flush=True,
                )
                results.append(result)
            runs.append(results)
    finally:
        if node_dir is not None:
            shutil.rmtree(node_dir, ignore_errors=True)
    report = {
        "benchmark": "fanout",
        "command": command_line(),
        "config": {
            "clients": args.clients,
            "step_seconds": args.step,
            "steps_deliveries_per_s": args.steps,
            "p99_limit_ms": P99_LIMIT_MS,
            "seed": args.seed,
            "runs": args.runs,
        },
        "host": {**host(node_versions), "load_average_at_start": load_at_start},
        "summary": summarize(runs),
        "runs": runs,
    }
    text = json.dumps(report, indent=2)
    if args.out:
        await asyncio.to_thread(Path(args.out).write_text, text + "\n")
    print(text)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 clients, 1 run, short steps")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--step", type=float, default=3.0, help="seconds measured per step")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", default="hub,socketio,starlette,node-ws")
    parser.add_argument("--out", help="also write the JSON report here")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.runs, args.step = 200, 1, 1.5
    base = [10_000, 20_000, 40_000, 60_000, 80_000, 100_000, 130_000, 160_000, 200_000]
    args.steps = [*base, 250_000, 300_000, 400_000] if not args.quick else base[:6]
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
