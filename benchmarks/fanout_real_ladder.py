"""Through the real path (`hub feed` -> Redis -> server -> browser-like sockets), how many quote
deliveries per second does the server keep up with (the knee, F1), and what is the p99 at
20,000 deliveries/s (F2)?

Hub (`hub serve`, services mode, core 0) and node-ws (the peer, same Redis channels, core 0),
each with --clients sockets from the C load client (core 1), every socket authenticated and
subscribed to all 34 quote channels. For each rate in --rates (offered deliveries/s), `hub feed`
publishes rate / clients quotes/s for --warmup s, then --step s are measured. Latency is wall
clock from the quote's `timestamp` (set by the feed when it makes the quote) to its arrival.
"Kept up" = p99 <= 50 ms, >= 95% of what reached Redis delivered and >= 95% of the rate
published; the knee is the highest step that kept up, the contiguous knee the highest step up to
which every step kept up. Two steps in a row past the knee end the ladder.

    python benchmarks/fanout_real_ladder.py --runs 3 --step 6 --only hub,node-ws
    python benchmarks/fanout_real_ladder.py --quick        # one short run, for a smoke test
    python benchmarks/fanout_real_ladder.py --chart ladder.json [more.json ...]
                                           # recompute the summary, redraw, others beside it

JSON and PNG: benchmarks/results/fanout_real-ladder-DATE.{json,png} (or --out).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness.charts import figure, label
from harness.config import CLIENT_CPUS
from harness.hub import feed, symbols
from harness.real_runs import TARGETS, PublicationCounter, parse, parser, print_summary, run_mode
from harness.real_targets import Target
from harness.stats import median_of, medians
from harness.wsload import WsLoad, cpu_pct, subscribed_clients

P99_LIMIT_MS = 50.0


async def ladder_one(
    target: Target, binary: Path, args: argparse.Namespace, env: dict[str, str] | None
) -> dict[str, Any]:
    assert env is not None
    redis_url = env["HUB_REDIS_URL"]
    channels = [f"quotes:{s}" for s in symbols()]
    workdir = Path(tempfile.mkdtemp(prefix="fanout-real-"))
    extra = ["--path", target.path, "--deflate-share", str(args.deflate_share)]
    extra += subscribed_clients(args.clients, channels, workdir)
    client = await WsLoad.start(binary, target.port, args.clients, *extra, cpus=CLIENT_CPUS)
    steps: list[dict[str, Any]] = []
    try:
        ready = await client.ready()
        if ready["ready"] != args.clients:
            raise RuntimeError(f"{target.name}: only {ready} clients ready")
        server = psutil.Process(target.pid)
        for rate in args.rates:
            qps = rate / args.clients  # every client is subscribed to every symbol
            async with (
                PublicationCounter(redis_url, target.prefix) as counter,
                feed(env, qps, workdir, CLIENT_CPUS),
            ):
                await asyncio.sleep(args.warmup)
                await client.stats()
                published0, cpu0, t0 = counter.count, server.cpu_times(), time.monotonic()
                await asyncio.sleep(args.step)
                stats = await client.stats()
                cpu1, wall = server.cpu_times(), time.monotonic() - t0
                published = counter.count - published0
            expected = published * args.clients
            row = {
                "offered_deliveries_per_s": rate,
                "published_per_s": round(published / wall, 1),
                "expected_per_s": round(expected / wall),
                "received_per_s": round(stats["deliveries"] / stats["interval_s"]),
                "received_share": round(stats["deliveries"] / expected, 4) if expected else None,
                "p50_ms": stats["lat_ms"]["p50"],
                "p90_ms": stats["lat_ms"]["p90"],
                "p99_ms": stats["lat_ms"]["p99"],
                "max_ms": stats["lat_ms"]["max"],
                "server_cpu_pct": round(
                    100 * (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall, 1
                ),
                "server_rss_mib": round(server.memory_info().rss / 2**20, 1),
                "client_cpu_pct": cpu_pct(stats),
                "frames_per_s": round(stats["messages"] / stats["interval_s"]),
                "wire_bytes_per_s": round(stats["wire_bytes"] / stats["interval_s"]),
                "closed_by_server": stats["closed_by_server"],
            }
            row["kept_up"] = bool(
                row["received_share"] is not None
                and row["received_share"] >= 0.95
                and row["p99_ms"] <= P99_LIMIT_MS
                and row["published_per_s"] >= 0.95 * qps
            )
            steps.append(row)
            print(f"  {target.name} {rate:>7}/s: {row}", flush=True)
            if not row["kept_up"] and len(steps) >= 2 and not steps[-2]["kept_up"]:
                break  # two steps past the knee: the rest only takes time
    finally:
        await client.stop()
    knee = max((s["offered_deliveries_per_s"] for s in steps if s["kept_up"]), default=0)
    at_20k = next((s for s in steps if s["offered_deliveries_per_s"] == 20_000), None)
    return {
        "ready": ready,
        "steps": steps,
        "knee_deliveries_per_s": knee,
        "p99_at_20k_ms": at_20k["p99_ms"] if at_20k else None,
        "p50_at_20k_ms": at_20k["p50_ms"] if at_20k else None,
        "client_cpu_at_20k_pct": at_20k["client_cpu_pct"] if at_20k else None,
        "server_cpu_at_20k_pct": at_20k["server_cpu_pct"] if at_20k else None,
    }


def contiguous_knee(steps: list[dict[str, Any]]) -> int:
    """The highest rate up to which every step kept up (stricter than the knee, which is the
    highest step that kept up even if a lower one, disturbed by a neighbour, did not)."""
    knee = 0
    for step in steps:
        if not step["kept_up"]:
            break
        knee = step["offered_deliveries_per_s"]
    return knee


def summarize(results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name, runs in results.items():
        at_20k = ("p99_at_20k_ms", "p50_at_20k_ms", "server_cpu_at_20k_pct")
        summary[name] = {
            "knee_deliveries_per_s": statistics.median(r["knee_deliveries_per_s"] for r in runs),
            "knee_per_run": [r["knee_deliveries_per_s"] for r in runs],
            "contiguous_knee_deliveries_per_s": statistics.median(
                contiguous_knee(r["steps"]) for r in runs
            ),
            "contiguous_knee_per_run": [contiguous_knee(r["steps"]) for r in runs],
            **medians(runs, {k: k for k in (*at_20k, "client_cpu_at_20k_pct")}),
            "curve": median_curve(runs),
        }
    hub, node = summary.get("hub"), summary.get("node-ws")
    if hub and node and node["knee_deliveries_per_s"]:
        hub["knee_vs_node"] = round(hub["knee_deliveries_per_s"] / node["knee_deliveries_per_s"], 2)
        if node["contiguous_knee_deliveries_per_s"]:
            hub["contiguous_knee_vs_node"] = round(
                hub["contiguous_knee_deliveries_per_s"] / node["contiguous_knee_deliveries_per_s"],
                2,
            )
    return summary


def median_curve(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rates = sorted({s["offered_deliveries_per_s"] for r in runs for s in r["steps"]})
    curve = []
    for rate in rates:
        rows = [s for r in runs for s in r["steps"] if s["offered_deliveries_per_s"] == rate]
        point: dict[str, Any] = {"offered_deliveries_per_s": rate, "runs": len(rows)}
        for key in ("received_per_s", "p50_ms", "p99_ms", "server_cpu_pct", "client_cpu_pct"):
            point[key] = median_of(rows, key)
        curve.append(point)
    return curve


def plot(report: dict[str, Any], path: Path, *others: dict[str, Any]) -> Path:
    """The ladder's curves; `others` are more ladder reports (e.g. an older commit, or Hub with
    deflate) drawn beside it, each series labelled with its commit."""
    colors = {"hub": "tab:blue", "hub-deflate": "tab:purple", "node-ws": "tab:gray"}
    series = list(report["summary"].items())
    for other in others:
        commit = other["host"].get("git_commit", "?")
        series += [(f"{name} @ {commit}", item) for name, item in other["summary"].items()]
    extra = iter(["tab:green", "tab:brown", "tab:olive", "tab:pink"])
    with figure(path, (13, 5), ncols=2) as (fig, (lat, thr)):
        for name, item in series:
            curve = item["curve"]
            x = [c["offered_deliveries_per_s"] for c in curve]
            color = colors.get(name) or next(extra, "black")
            lat.plot(x, [c["p99_ms"] for c in curve], "-o", color=color, label=f"{name}: p99")
            lat.plot(
                x, [c["p50_ms"] for c in curve], "--^", color=color, alpha=0.6, label=f"{name}: p50"
            )
            received = [c["received_per_s"] for c in curve]
            thr.plot(x, received, "-o", color=color, label=f"{name}: received/s")
        lat.axhline(
            TARGETS["p99_at_20k_ms"], color="tab:red", lw=0.8, ls="-.", label="F2 target (at 20k/s)"
        )
        lat.axhline(P99_LIMIT_MS, color="tab:orange", lw=0.8, ls=":", label="knee bar: p99 50 ms")
        lat.set_xscale("log")
        lat.set_yscale("log")
        label(
            lat,
            "offered deliveries/s (quotes/s x 1,000 sockets)",
            "publish -> socket latency, ms (log)",
            "Latency against offered load",
        )
        top = max(report["settings"]["rates"])
        thr.plot([0, top], [0, top], color="lightgray", lw=0.8)
        label(
            thr, "offered deliveries/s", "received deliveries/s", "Throughput against offered load"
        )
        host, settings = report["host"], report["settings"]
        fig.suptitle(
            f"fanout_real: feed -> Redis -> server (core 0) -> {settings['clients']} sockets"
            f" (C client, core 1); Hub {host.get('git_commit', '?')}, {report['date']},"
            f" {settings['runs']} run(s), medians",
            fontsize=9,
        )
    return path


def rechart(source: Path, *others: Path) -> None:
    """Recompute a ladder report's summary from its runs and redraw its chart, with the ladders
    in `others` (e.g. the same benchmark on an older commit) drawn beside it."""
    report = json.loads(source.read_text())
    report["summary"] = summarize(report["runs"])
    source.write_text(json.dumps(report, indent=2) + "\n")
    extra = [json.loads(other.read_text()) for other in others]
    print(plot(report, source.with_suffix(".png"), *extra))


def parse_args() -> argparse.Namespace:
    found = parser(__doc__)
    found.add_argument("--clients", type=int, default=1000)
    found.add_argument(
        "--rates",
        default="10000,20000,35000,50000,75000,100000,150000,200000",
        help="offered deliveries/s (the feed publishes rate / clients quotes/s)",
    )
    found.add_argument("--step", type=float, default=8.0, help="seconds measured per rate")
    found.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    args = parse(found, {"clients": 200, "step": 3.0, "warmup": 2.0})
    args.rates = [int(r) for r in args.rates.split(",")]
    if args.quick:
        args.rates = [r // 5 for r in args.rates[:4]]
    return args


async def main(args: argparse.Namespace) -> None:
    names = [n for n in args.only if n != "bare-uvicorn"]  # no feed: nothing to deliver
    report, path = await run_mode("ladder", args, ladder_one, summarize, names, show=False)
    print(f"chart {plot(report, path.with_suffix('.png'))}")
    print_summary(report)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--chart"]:
        rechart(Path(sys.argv[2]), *(Path(a) for a in sys.argv[3:]))
    else:
        asyncio.run(main(parse_args()))
