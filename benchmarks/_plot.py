"""Charts of the benchmark results: latency and throughput against offered load, Hub beside its
peers, so the knee is visible without reading a table. matplotlib (the [bench] extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

STYLE = {
    "services-1w": ("tab:blue", "Hub services (serve + worker + feed)"),
    "services-2w": ("tab:cyan", "Hub services, 2 workers"),
    "services-inproc": ("tab:purple", "Hub services, worker in serve"),
    "embedded": ("tab:green", "Hub embedded"),
    "peer-insert": ("tab:gray", "peer: JWT + one INSERT"),
}


def plot_orders(report: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat, thr) = plt.subplots(1, 2, figsize=(13, 5))
    targets = report["settings"]["targets"]
    for name, item in report["summary"].items():
        color, label = STYLE.get(name, ("black", name))
        curve = item["curve"]
        x = [c["offered_per_s"] for c in curve]

        def series(key: str, curve: list[dict[str, Any]] = curve) -> list[float]:
            return [c[key] if c[key] is not None else float("nan") for c in curve]

        if name == "peer-insert":
            lat.plot(
                x,
                series("submit_p99_ms"),
                ":",
                color=color,
                marker="s",
                label=f"{label}: submit p99",
            )
            thr.plot(
                x,
                series("accepted_per_s"),
                ":",
                color=color,
                marker="s",
                label=f"{label}: inserts/s",
            )
            continue
        lat.plot(
            x,
            series("to_filled_p99_ms"),
            "-",
            color=color,
            marker="o",
            label=f"{label}: submit→filled p99",
        )
        lat.plot(
            x, series("submit_p99_ms"), "--", color=color, marker="^", label=f"{label}: submit p99"
        )
        thr.plot(x, series("filled_per_s"), "-", color=color, marker="o", label=f"{label}: fills/s")
        thr.plot(
            x,
            series("accepted_per_s"),
            "--",
            color=color,
            marker="^",
            alpha=0.6,
            label=f"{label}: accepted/s",
        )
    lat.axhline(targets["submit_to_socket_p99_ms"], color="tab:red", lw=0.8, ls="-.")
    lat.axhline(targets["submit_p99_ms"], color="tab:orange", lw=0.8, ls="-.")
    lat.set_yscale("log")
    lat.set_xlabel("offered orders/s")
    lat.set_ylabel("latency, ms (log)")
    lat.set_title("Latency against offered load (targets dash-dotted)")
    lat.legend(fontsize=7)
    top = max(max(report["settings"]["rates_per_s"]), 1)
    thr.plot([0, top], [0, top], color="lightgray", lw=0.8)
    thr.axhline(targets["end_to_end_per_s"], color="tab:red", lw=0.8, ls="-.")
    thr.set_xlabel("offered orders/s")
    thr.set_ylabel("per second")
    thr.set_title("Throughput against offered load")
    thr.legend(fontsize=7)
    host = report["host"]
    fig.suptitle(
        f"orders: Hub at commit {host.get('git_commit', '?')} ({report['date']};"
        f" {host.get('cpu_count', '?')} vCPUs shared by load generator, Hub and services;"
        f" {report['settings']['runs']} run(s), medians)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":  # re-render a chart from its JSON: python benchmarks/_plot.py FILE.json
    import json
    import sys

    source = Path(sys.argv[1])
    print(plot_orders(json.loads(source.read_text()), source.with_suffix(".png")))
