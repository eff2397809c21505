"""The orders report: medians over runs per candidate (the ladder's curve, the hot account, the
overload step) and the chart of latency and throughput against offered load, Hub beside the
peer."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .charts import figure, label, nan_for_none
from .stats import medians

CANDIDATES = ("services-1w", "services-2w", "services-inproc", "embedded", "peer-insert")
TARGETS = {"end_to_end_per_s": 1000, "submit_p99_ms": 20, "submit_to_socket_p99_ms": 100}
# The summary's medians over runs: name -> dotted path in a step (curve), in the hot-account
# phase, in the overload step.
CURVE = {
    "accepted_per_s": "accepted_per_s",
    "shed_503_per_s": "shed_503_per_s",
    "submit_p50_ms": "submit_202.p50_ms",
    "submit_p99_ms": "submit_202.p99_ms",
    "to_filled_p50_ms": "submit_to_filled.p50_ms",
    "to_filled_p99_ms": "submit_to_filled.p99_ms",
    "filled_per_s": "filled_per_s_during_offer",
    "never_filled": "never_filled_within_15s",
}
HOT = {
    "crowd_alone_to_filled_p99_ms": "crowd_alone.submit_to_filled.p99_ms",
    "crowd_with_hot_to_filled_p99_ms": "crowd_with_hot.submit_to_filled.p99_ms",
    "hot_to_filled_p99_ms": "crowd_with_hot.submit_to_filled_hot_account.p99_ms",
    "hot_accepted_submit_p99_ms": "crowd_with_hot.submit_202_hot_account.p99_ms",
    "never_filled": "crowd_with_hot.never_filled_within_15s",
}
OVERLOAD = {
    "offered_per_s": "offered_per_s",
    "accepted_per_s": "accepted_per_s",
    "shed_503_per_s": "shed_503_per_s",
    "accepted_submit_p99_ms": "submit_202.p99_ms",
    "accepted_to_filled_p99_ms": "submit_to_filled.p99_ms",
    "never_filled": "never_filled_within_15s",
    "serve_rss_first_mib": "serve_rss_mib.first",
    "serve_rss_max_mib": "serve_rss_mib.max",
}
STYLE = {
    "services-1w": ("tab:blue", "Hub services (serve + worker + feed)"),
    "services-2w": ("tab:cyan", "Hub services, 2 workers"),
    "services-inproc": ("tab:purple", "Hub services, worker in serve"),
    "embedded": ("tab:green", "Hub embedded"),
    "peer-insert": ("tab:gray", "peer: JWT + one INSERT"),
}


def summarize(runs: list[list[dict[str, Any]]], args: argparse.Namespace) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name in CANDIDATES:
        rows = [r for run in runs for r in run if r["candidate"] == name and "error" not in r]
        if not rows:
            continue
        curve = []
        for k, rate in enumerate(args.rates):
            at = [r["ladder"][k] for r in rows if len(r["ladder"]) > k]
            curve.append(
                {
                    "offered_per_s": rate,
                    **medians(at, CURVE),
                    "server_cpu_pct": at[0]["server_cpu_pct"] if at else None,
                    **medians(at, {key: key for key in ("host_cpu_pct", "client_cpu_pct")}),
                }
            )
        item: dict[str, Any] = {"runs": len(rows), "curve": curve}
        if name == "peer-insert":
            item["max_accepted_per_s"] = max((c["accepted_per_s"] or 0) for c in curve)
        else:
            item["max_filled_per_s"] = max((c["filled_per_s"] or 0) for c in curve)
            item["knee_per_s"] = max(
                (
                    c["offered_per_s"]
                    for c in curve
                    if (c["submit_p99_ms"] or 1e9) <= TARGETS["submit_p99_ms"]
                    and (c["to_filled_p99_ms"] or 1e9) <= TARGETS["submit_to_socket_p99_ms"]
                    and not c["shed_503_per_s"]
                    and not c["never_filled"]
                ),
                default=None,
            )
            item["hot_account"] = medians([r["hot_account"] for r in rows], HOT)
            item["overload_3x"] = medians([r["overload"] for r in rows], OVERLOAD)
        summary[name] = item
    return summary


def plot(report: dict[str, Any], path: Path) -> Path:
    """Latency and throughput against offered load, Hub beside the peer."""
    targets = report["settings"]["targets"]
    with figure(path, (13, 5), ncols=2) as (fig, (lat, thr)):
        for name, item in report["summary"].items():
            color, what = STYLE.get(name, ("black", name))
            curve = item["curve"]
            x = [c["offered_per_s"] for c in curve]

            def draw(ax: Any, key: str, style: str, marker: str, text: str, **kw: Any) -> None:
                ys = nan_for_none([c[key] for c in curve])  # noqa: B023
                ax.plot(x, ys, style, color=color, marker=marker, label=f"{what}: {text}", **kw)  # noqa: B023

            if name == "peer-insert":
                draw(lat, "submit_p99_ms", ":", "s", "submit p99")
                draw(thr, "accepted_per_s", ":", "s", "inserts/s")
                continue
            draw(lat, "to_filled_p99_ms", "-", "o", "submit→filled p99")
            draw(lat, "submit_p99_ms", "--", "^", "submit p99")
            draw(thr, "filled_per_s", "-", "o", "fills/s")
            draw(thr, "accepted_per_s", "--", "^", "accepted/s", alpha=0.6)
        lat.axhline(targets["submit_to_socket_p99_ms"], color="tab:red", lw=0.8, ls="-.")
        lat.axhline(targets["submit_p99_ms"], color="tab:orange", lw=0.8, ls="-.")
        lat.set_yscale("log")
        title = "Latency against offered load (targets dash-dotted)"
        label(lat, "offered orders/s", "latency, ms (log)", title)
        top = max(max(report["settings"]["rates_per_s"]), 1)
        thr.plot([0, top], [0, top], color="lightgray", lw=0.8)
        thr.axhline(targets["end_to_end_per_s"], color="tab:red", lw=0.8, ls="-.")
        label(thr, "offered orders/s", "per second", "Throughput against offered load")
        host = report["host"]
        fig.suptitle(
            f"orders: Hub at commit {host.get('git_commit', '?')} ({report['date']};"
            f" {host.get('cpu_count', '?')} vCPUs shared by load generator, Hub and services;"
            f" {report['settings']['runs']} run(s), medians)",
            fontsize=9,
        )
    return path
