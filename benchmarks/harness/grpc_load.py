"""Closed-loop gRPC GetMarketData callers, in their own processes (default asyncio loop): N
callers each call, wait for the answer, call again, for a fixed time after a warm-up."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from .cpu import CpuMeter, HostCpu
from .procs import bench_python
from .stats import latency_ms


def main() -> None:
    """The child: prints {"calls", "errors", "latencies", "client_cpu_pct"} as one JSON line."""
    parser = argparse.ArgumentParser(description="gRPC GetMarketData callers (benchmarks' child)")
    for name in ("--target", "--token", "--symbols"):
        parser.add_argument(name, required=True)
    parser.add_argument("--callers", type=int, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--warmup", type=float, required=True)
    asyncio.run(_callers(parser.parse_args()))


async def _callers(args: argparse.Namespace) -> None:
    import psutil

    from hub.entrypoints.grpc.client import MarketDataClient

    symbols = args.symbols.split(",")
    latencies: list[float] = []
    errors = 0
    async with MarketDataClient(args.target, args.token) as client:
        await client.get_market_data([symbols[0]])
        t0 = time.perf_counter()
        measure_from = t0 + args.warmup
        stop_at = measure_from + args.duration
        calls = 0

        async def caller(k: int) -> None:
            nonlocal calls, errors
            i = k
            while (now := time.perf_counter()) < stop_at:
                try:
                    await client.get_market_data([symbols[i % len(symbols)]])
                except Exception:
                    errors += 1
                done = time.perf_counter()
                if now >= measure_from:
                    latencies.append(done - now)
                    calls += 1
                i += args.callers

        me = psutil.Process()
        await asyncio.sleep(0)
        cpu0 = me.cpu_times()
        await asyncio.gather(*(caller(k) for k in range(args.callers)))
        cpu1 = me.cpu_times()
        wall = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "calls": calls,
                "errors": errors,
                "latencies": latencies,
                "client_cpu_pct": round(100 * (sum(cpu1[:2]) - sum(cpu0[:2])) / wall, 1),
            }
        )
    )


async def measure_grpc(
    port: int,
    token: str,
    symbols: list[str],
    *,
    callers: int,
    processes: int,
    duration: float,
    warmup: float,
    serve_pid: int,
) -> dict[str, Any]:
    """`callers` spread over `processes` client processes against 127.0.0.1:port; calls/s,
    latency, and the server's, clients' and host's CPU."""
    argv = bench_python(
        "harness.grpc_load",
        "--target",
        f"127.0.0.1:{port}",
        "--token",
        token,
        "--symbols",
        ",".join(symbols),
        "--callers",
        str(callers // processes),
        "--duration",
        str(duration),
        "--warmup",
        str(warmup),
    )
    cpu, host = CpuMeter({"serve": serve_pid}), HostCpu()
    await asyncio.sleep(0.2)
    procs = [
        await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
        for _ in range(processes)
    ]
    await asyncio.sleep(warmup)
    cpu.start()
    host.start()
    outs = [json.loads((await p.communicate())[0]) for p in procs]
    server_cpu, host_cpu = cpu.stop(), host.stop()
    latencies = [x for o in outs for x in o["latencies"]]
    return {
        "callers": callers,
        "client_processes": processes,
        "calls_per_s": round(sum(o["calls"] for o in outs) / duration, 1),
        "errors": sum(o["errors"] for o in outs),
        "latency": latency_ms(latencies),
        "client_cpu_pct": [o["client_cpu_pct"] for o in outs],
        "server_cpu_pct": server_cpu["serve"],
        "host_cpu_pct": host_cpu,
    }
