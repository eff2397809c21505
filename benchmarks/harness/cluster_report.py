"""cluster.py's report: medians over runs per case, target and rate, the knees, the cluster's
figures as a ratio of the single Redis' measured in the same run, and the chart (latency against
offered load, single beside cluster)."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from .charts import figure, label, nan_for_none

TARGETS = ("single", "cluster")
#: Fan-out shapes: (clients, channels per client, publications per broker call). `watch`'s
#: clients are --clients.
SHAPES = {"watch": (1000, 20, 1), "fanin": (1, 200, 20)}
#: What the summary gives as cluster / single, per phase.
RATIOS = {
    "publish": (
        "achieved_per_s",
        "p50_ms",
        "p99_ms",
        "publisher_cpu_us_per_pub",
        "redis_cpu_us_per_pub",
    ),
    "fanout": (
        "messages_in_per_s",
        "received_per_s",
        "p50_ms",
        "p99_ms",
        "node_cpu_pct",
        "redis_cpu_us_per_pub",
    ),
}
STYLE = {"single": ("tab:blue", "single Redis"), "cluster": ("tab:orange", "3-shard cluster")}


def median_value(values: list[Any]) -> Any:
    """The median of numbers (None and NaN skipped), element-wise of lists; the most common of
    anything else (strings, None)."""
    if values and all(isinstance(v, list) for v in values):
        return [median_value(list(column)) for column in zip(*values, strict=False)]
    if any(isinstance(v, str) for v in values) or all(v is None for v in values):
        return Counter(values).most_common(1)[0][0] if values else None
    numbers = [v for v in values if isinstance(v, int | float) and v == v]
    return round(statistics.median(numbers), 2) if numbers else None


def median_steps(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per rate: the median of every figure over the runs, and how many runs kept up."""
    steps = []
    for rows in zip(*runs, strict=False):
        step = {k: median_value([r[k] for r in rows]) for k in rows[0] if k != "kept_up"}
        step["rate"] = rows[0]["rate"]
        steps.append(step | {"kept_up_runs": sum(r["kept_up"] for r in rows), "runs": len(rows)})
    return steps


def knees(steps: list[dict[str, Any]]) -> dict[str, int | None]:
    """The highest rate kept up in most runs; the highest up to which every rate was."""
    kept = [2 * s["kept_up_runs"] > s["runs"] for s in steps]
    contiguous = None
    for step, ok in zip(steps, kept, strict=True):
        if not ok:
            break
        contiguous = step["rate"]
    knee = max((s["rate"] for s, ok in zip(steps, kept, strict=True) if ok), default=None)
    return {"knee": knee, "contiguous_knee": contiguous}


#: Marginal CPU costs fitted over a case's steps: name -> (CPU % key, rate key), per phase.
MARGINAL = {
    "publish": {
        "redis_us_per_pub": ("redis_cpu_pct", "achieved_per_s"),
        "redis_masters_us_per_pub": ("redis_masters_cpu_pct", "achieved_per_s"),
        "publisher_us_per_pub": ("publisher_cpu_pct", "achieved_per_s"),
    },
    "fanout": {
        "redis_us_per_pub": ("redis_cpu_pct", "published_per_s"),
        "redis_masters_us_per_pub": ("redis_masters_cpu_pct", "published_per_s"),
        "node_us_per_message_in": ("node_cpu_pct", "messages_in_per_s"),
        "node_us_per_offered_delivery": ("node_cpu_pct", "offered_deliveries_per_s"),
    },
}


def marginal_us(steps: list[dict[str, Any]], cpu_key: str, rate_key: str) -> float | None:
    """Least-squares slope of CPU (% of a core) against a rate (per s), in us of CPU per unit:
    what one more publication (message, delivery) costs, the fixed part (idle, timers) left
    out."""
    points = [
        (float(s[rate_key]), float(s[cpu_key]))
        for s in steps
        if isinstance(s.get(rate_key), int | float) and isinstance(s.get(cpu_key), int | float)
    ]
    if len(points) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    var = sum((x - mx) ** 2 for x, _ in points)
    if var == 0:
        return None
    return round(sum((x - mx) * (y - my) for x, y in points) / var * 1e4, 2)


def one_node_cost(summary: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Redis CPU per publication with one subscribing node (`watch`) minus with none (publish
    path, latest), at the rates both measured with one publication per call: what Redis spends
    to send each publication to one more node."""
    latest, watch = summary["publish"].get("latest"), summary["fanout"].get("watch")
    run = runs[0]
    if not latest or not watch:
        return {}
    if run["publish"]["latest"]["single"].get("publications_per_call") != 1:
        return {}
    out: dict[str, Any] = {}
    for target in TARGETS:
        alone = {s["rate"]: s["redis_cpu_us_per_pub"] for s in latest[target]["steps"]}
        out[target] = {
            str(s["rate"]): round(s["redis_cpu_us_per_pub"] - alone[s["rate"]], 2)
            for s in watch[target]["steps"]
            if s["rate"] in alone and s["redis_cpu_us_per_pub"] and alone[s["rate"]]
        }
    return out


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for phase in ("publish", "fanout"):
        summary[phase] = {}
        for case in runs[0][phase]:
            out: dict[str, Any] = {}
            for target in TARGETS:
                steps = median_steps([run[phase][case][target]["steps"] for run in runs])
                marginal = {
                    name: marginal_us(steps, *keys) for name, keys in MARGINAL[phase].items()
                }
                out[target] = {**knees(steps), "marginal_cpu": marginal, "steps": steps}
            ratios = {}
            for one, other in zip(out["single"]["steps"], out["cluster"]["steps"], strict=True):
                ratios[str(one["rate"])] = {
                    key: round(other[key] / one[key], 2) if one[key] and other[key] else None
                    for key in RATIOS[phase]
                }
            out["cluster_over_single"] = ratios
            summary[phase][case] = out
    summary["redis_us_per_pub_for_one_subscribing_node"] = one_node_cost(summary, runs)
    summary["redis_idle_cpu_pct"] = {
        t: median_value([run["redis_idle_cpu_pct"][t] for run in runs]) for t in TARGETS
    }
    return summary


def plot(report: dict[str, Any], path: Path) -> Path:
    """One panel per case: p99 (solid) and p50 (dashed) against offered rate, single beside
    cluster; a filled marker where the step kept up in most runs, x where it did not."""
    summary = report["summary"]
    panels = [("publish", c) for c in summary["publish"]]
    panels += [("fanout", c) for c in summary["fanout"]]
    if not panels:
        return path
    titles = {
        "latest": "publish path: latest-value quotes",
        "reliable": "publish path: reliable (cluster WAITs 1 replica)",
        "watch": "one node's fan-out: market watch",
        "fanin": "one node's fan-in: 1 client x 200 channels",
    }
    with figure(path, (4.6 * len(panels), 4.2), ncols=len(panels)) as (_, axes):
        from matplotlib.ticker import FuncFormatter, NullFormatter

        for ax, (phase, case) in zip(axes if len(panels) > 1 else [axes], panels, strict=True):
            for target in TARGETS:
                colour, name = STYLE[target]
                block = summary[phase][case][target]
                steps = block["steps"]
                rates = [s["rate"] for s in steps]
                ax.plot(rates, nan_for_none([s["p99_ms"] for s in steps]), "-", color=colour,
                        label=f"{name} p99 (knee {block['knee']})")  # fmt: skip
                ax.plot(rates, nan_for_none([s["p50_ms"] for s in steps]), ".--", color=colour,
                        label=f"{name} p50", alpha=0.7)  # fmt: skip
                for s in steps:
                    kept = 2 * s["kept_up_runs"] > s["runs"]
                    ax.plot(s["rate"], s["p99_ms"] if s["p99_ms"] is not None else float("nan"),
                            "o" if kept else "x", color=colour)  # fmt: skip
            ax.set_xscale("log")
            ax.set_yscale("log")
            if phase == "fanout":  # the kept-up bar
                ax.axhline(50, linestyle=":", color="grey", linewidth=1)
            ax.set_xticks(rates)  # the measured rates, written out
            for axis in (ax.xaxis, ax.yaxis):
                axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                axis.set_minor_formatter(NullFormatter())
            xlabel = "offered publications/s" if phase == "publish" else "offered quotes/s"
            ylabel = "publish call latency (ms)" if phase == "publish" else "end to end (ms)"
            label(ax, xlabel, ylabel, titles.get(case, case))
    return path
