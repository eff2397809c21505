"""What one request costs: an open-loop step against a server, with the server's CPU time per
request answered (also net of its idle CPU), its helpers' CPU, and PostgreSQL's and Redis's CPU
per request over the same span; per route, medians over runs and ratios to a peer, and the chart
(reads)."""

from __future__ import annotations

import asyncio
import collections
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from .charts import figure
from .cpu import HostCpu, ServiceCpu, cpu_seconds
from .httpload import open_loop
from .stats import median_of


async def request_cost(
    route: str,
    port: int,
    requests: list[bytes],
    server_pid: int,
    others: dict[str, int],
    idle_per_s: float,
    *,
    rate: float,
    duration: float,
    warmup: float,
    connections: int,
) -> dict[str, Any]:
    """Offer `requests` (cycled) at `rate` to 127.0.0.1:port. CPU per request is the server's
    CPU from the first request to the last answer (warm-up included) / requests answered in that
    span; `idle_per_s` is the server's CPU seconds per second with no load."""
    completed = 0
    bad: list[str] = []

    def on_response(i: int, status: int, body: bytes, scheduled: float, done: float) -> None:
        nonlocal completed
        completed += 1
        if not 200 <= status < 300 and len(bad) < 3:
            bad.append(f"{status}: {body[:300].decode(errors='replace')}")

    server = psutil.Process(server_pid)
    helpers = {name: psutil.Process(pid) for name, pid in others.items()}
    postgres, redis = ServiceCpu(("postgres",)), ServiceCpu(("redis-server",))
    host = HostCpu()
    await asyncio.sleep(0.3)
    c0 = cpu_seconds(server)
    h0 = {name: cpu_seconds(p) for name, p in helpers.items()}
    postgres.start()
    redis.start()
    host.start()
    t0 = time.perf_counter()
    result = await open_loop(
        "127.0.0.1",
        port,
        lambda i: requests[i % len(requests)],
        rate=rate,
        duration=duration,
        warmup=warmup,
        connections=connections,
        on_response=on_response,
        drain_timeout=10.0,
    )
    wall = time.perf_counter() - t0
    server_s = cpu_seconds(server) - c0
    pg_s, redis_s, host_pct = postgres.stop(), redis.stop(), host.stop()
    per = 1e6 / max(completed, 1)
    non_2xx = {s: n for s, n in result.statuses.items() if s.isdigit() and not s.startswith("2")}
    row: dict[str, Any] = {
        "route": route,
        "offered_per_s": rate,
        "completed_per_s": result.completed_per_s,
        "statuses": result.statuses,
        "non_2xx": sum(non_2xx.values()),
        # A request in flight on a connection the server closed: uvicorn closes keep-alive
        # connections idle for 5 s, and the generator may send on one just as it does.
        "connection_lost": result.statuses.get("connection_lost", 0),
        "unfinished": result.unfinished,
        "latency": result.latency,
        "requests_in_span": completed,
        "span_s": round(wall, 2),
        "server_cpu_pct": round(100 * server_s / wall, 1),
        "cpu_us_per_req": round(server_s * per, 1),
        "cpu_us_per_req_net_of_idle": round((server_s - idle_per_s * wall) * per, 1),
        "postgres_cpu_us_per_req": round(pg_s * per, 1),
        "redis_cpu_us_per_req": round(redis_s * per, 1),
        "helpers_cpu_pct": {
            name: round(100 * (cpu_seconds(p) - h0[name]) / wall, 1) for name, p in helpers.items()
        },
        "client_cpu_pct": result.client_cpu_pct,
        "dispatch_lateness_p99_ms": result.late_dispatch_ms_p99,
        "host_cpu_pct": host_pct,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    if bad:
        row["sample_errors"] = bad
    return row


def progress(run: int, runs: int, row: dict[str, Any]) -> None:
    print(
        f"run {run + 1}/{runs} {row['route']}: {row['completed_per_s']}/s "
        f"p50 {row['latency']['p50_ms']} p99 {row['latency']['p99_ms']} ms, "
        f"cpu {row['cpu_us_per_req']} us/req ({row['server_cpu_pct']}%), "
        f"statuses {row['statuses']}, client {row['client_cpu_pct']}%, "
        f"load {row['load_average_1m']}",
        file=sys.stderr,
        flush=True,
    )


def summarize(runs: list[list[dict[str, Any]]], order: list[str], peer: str) -> dict[str, Any]:
    """Per route (in `order`): medians over runs of request_cost's rows, every status seen, and
    the CPU per request as a ratio to the `peer` route's (of the medians, and within each run)."""
    keys = [k for k in order if any(r["route"] == k for run in runs for r in run)]

    def med(rows: list[dict[str, Any]], name: str) -> float | None:
        return median_of(rows, name)

    summary: dict[str, Any] = {}
    for key in keys:
        rows = [r for run in runs for r in run if r["route"] == key]
        statuses: collections.Counter[str] = collections.Counter()
        for r in rows:
            statuses.update(r["statuses"])
        summary[key] = {
            "completed_per_s": med(rows, "completed_per_s"),
            "statuses": dict(statuses),
            "non_2xx": sum(n for s, n in statuses.items() if s.isdigit() and s[0] != "2"),
            "connection_lost": statuses.get("connection_lost", 0),
            "p50_ms": round(statistics.median(r["latency"]["p50_ms"] for r in rows), 2),
            "p99_ms": round(statistics.median(r["latency"]["p99_ms"] for r in rows), 2),
            "p99_ms_per_run": [r["latency"]["p99_ms"] for r in rows],
            "cpu_us_per_req": med(rows, "cpu_us_per_req"),
            "cpu_us_per_req_per_run": [r["cpu_us_per_req"] for r in rows],
            "cpu_us_per_req_net_of_idle": med(rows, "cpu_us_per_req_net_of_idle"),
            "server_cpu_pct": med(rows, "server_cpu_pct"),
            "postgres_cpu_us_per_req": med(rows, "postgres_cpu_us_per_req"),
            "redis_cpu_us_per_req": med(rows, "redis_cpu_us_per_req"),
            "client_cpu_pct": med(rows, "client_cpu_pct"),
            "host_cpu_pct": med(rows, "host_cpu_pct"),
            "runs": len(rows),
        }
    # The same ratio within each run (route / that run's peer), for runs that neighbours disturb.
    for key in keys:
        ratios = []
        for run in runs:
            peer_row = next((r for r in run if r["route"] == peer), None)
            row = next((r for r in run if r["route"] == key), None)
            if peer_row and row and peer_row["cpu_us_per_req"]:
                ratios.append(round(row["cpu_us_per_req"] / peer_row["cpu_us_per_req"], 2))
        summary[key]["cpu_ratio_to_peer_per_run"] = ratios
        if ratios:
            summary[key]["cpu_ratio_to_peer_median_of_runs"] = statistics.median(ratios)
    peer_cpu = summary.get(peer, {}).get("cpu_us_per_req")
    peer_net = summary.get(peer, {}).get("cpu_us_per_req_net_of_idle")
    for item in summary.values():
        if peer_cpu and item["cpu_us_per_req"] is not None:
            item["cpu_ratio_to_peer"] = round(item["cpu_us_per_req"] / peer_cpu, 2)
        if peer_net and item["cpu_us_per_req_net_of_idle"] is not None:
            item["net_cpu_ratio_to_peer"] = round(item["cpu_us_per_req_net_of_idle"] / peer_net, 2)
    return summary


def plot(report: dict[str, Any], path: Path, peer: str, peer_label: str) -> Path:
    """Bars of `hub serve` CPU per request by route (min-max over runs), the peer's as a line."""
    summary = report["summary"]
    routes = sorted(
        (k for k in summary if k != peer and summary[k]["cpu_us_per_req"] is not None),
        key=lambda k: summary[k]["cpu_us_per_req"],
    )
    with figure(path, (11, 0.38 * len(routes) + 1.8)) as (_, ax):
        draw(ax, report, routes, peer, peer_label)
    return path


def draw(ax: Any, report: dict[str, Any], routes: list[str], peer: str, peer_label: str) -> None:
    summary = report["summary"]
    values = [summary[k]["cpu_us_per_req"] for k in routes]
    low = [summary[k]["cpu_us_per_req"] - min(summary[k]["cpu_us_per_req_per_run"]) for k in routes]
    high = [
        max(summary[k]["cpu_us_per_req_per_run"]) - summary[k]["cpu_us_per_req"] for k in routes
    ]
    colors = [
        "tab:red"
        if summary[k]["non_2xx"]
        else ("tab:blue" if k.startswith("/api/v1") else "tab:orange")
        for k in routes
    ]
    ax.barh(routes, values, xerr=[low, high], color=colors, alpha=0.85, capsize=2)
    peer_cpu = summary.get(peer, {}).get("cpu_us_per_req")
    if peer_cpu:
        ax.axvline(
            peer_cpu, color="tab:gray", ls="--", lw=1.2, label=f"{peer_label}: {peer_cpu:.0f} us"
        )
        ax.legend(loc="lower right", fontsize=8)
    for y, k in enumerate(routes):
        v = values[y]
        ratio = summary[k].get("cpu_ratio_to_peer")
        label = f" {v:.0f} us" + (f" ({ratio:.1f}x)" if ratio else "")
        if summary[k]["non_2xx"]:
            label += f"  non-2xx: {summary[k]['non_2xx']}"
        if summary[k].get("connection_lost"):
            label += f"  (connections lost: {summary[k]['connection_lost']})"
        ax.text(v + max(high[y], 0), y, label, va="center", fontsize=7.5)
    ax.set_xlabel("hub serve CPU per request, us (median of runs; bars: min-max)")
    ax.set_xlim(0, max([*values, peer_cpu or 0]) * 1.3)
    ax.tick_params(axis="y", labelsize=8)
    host, settings = report["host"], report["settings"]
    ax.set_title(
        f"GET routes at {settings['rate_per_s']:g} req/s offered, services mode "
        f"(blue /api/v1, orange legacy, red: non-2xx seen); {settings['runs']} run(s)\n"
        f"Hub at {host.get('git_commit', '?')}, {report['date']}\n"
        f"{host.get('cpu_count', '?')} vCPUs shared by the load generator, Hub and the services",
        fontsize=9,
    )
