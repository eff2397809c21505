"""While 20 logins/s run, does quote delivery to other clients stall?

One `hub serve` (embedded, feed at 200 quotes/s over the 34 symbols); one WebSocket client
subscribed to every quote channel records the gap between consecutive frames. Two phases of
--duration s each: without logins, then with --logins/s logins of one registered user (open loop,
argon2id verify each). The figure is the gap distribution with logins against the one without,
in the same run: with hashing on the event loop, each login froze every socket for ~55 ms.

    python benchmarks/login_gaps.py                       # 3 runs, 10 s phases
    python benchmarks/login_gaps.py --runs 1 --duration 5
    python benchmarks/login_gaps.py --root ../other-checkout   # the same against another tree

The load client (this process) and the server share the host's 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness.charts import figure
from harness.config import PASSWORD, ROOT
from harness.procs import free_port, spawn, stop_all, wait_ready
from harness.report import command_line, environment, load_average, write_report
from harness.stats import latency_ms, median_of

SYMBOLS = 34


async def gaps_while(ws: Any, seconds: float) -> list[float]:
    """Gaps between consecutive frames received during `seconds`."""
    arrivals: list[float] = []
    end = time.perf_counter() + seconds
    while (now := time.perf_counter()) < end:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(end - now):
                await ws.recv()
                arrivals.append(time.perf_counter())
    return [b - a for a, b in itertools.pairwise(arrivals)]


async def logins(url: str, rate: float, seconds: float, done: list[int]) -> None:
    """Open loop: login i is due at start + i/rate, whatever happened to the earlier ones."""
    body = {"email": "gaps@example.com", "password": PASSWORD}
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        tasks = []
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(http.post("/api/v1/auth/login", json=body)))
        for response in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(response, httpx.Response):
                done.append(response.status_code)


async def one_run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    port, grpc_port = free_port(), free_port()
    env = {
        "HUB_PORT": str(port),
        "HUB_GRPC_PORT": str(grpc_port),
        "HUB_FEED_QPS": "200",
        "HUB_LOGIN_LIMIT_PER_CLIENT": "1000000",
        "HUB_REGISTER_LIMIT_PER_CLIENT": "1000000",
        "HUB_LOG_LEVEL": "warning",
    }
    # The hub package of `root` (this checkout by default, or another one to compare with).
    boot = (
        f"import sys; sys.path.insert(0, {str(root)!r}); sys.argv[0] = 'hub';"
        " from hub.entrypoints.cli import main; sys.exit(main())"
    )
    argv = [sys.executable, "-c", boot, "serve"]
    logdir = Path(tempfile.mkdtemp(prefix="login-gaps-"))
    proc = spawn("serve", argv, env, logdir)
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(f"{url}/readyz", proc)
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            body = {"email": "gaps@example.com", "password": PASSWORD}
            await http.post("/api/v1/auth/register", json=body)
            token = (await http.post("/api/v1/auth/login", json=body)).json()["access_token"]
            listed = await http.get(
                "/api/v1/instruments?limit=100", headers={"Authorization": f"Bearer {token}"}
            )
            found = listed.json()
            rows = found["instruments"] if isinstance(found, dict) else found
            symbols = [row["symbol"] for row in rows]
        auth = {"Authorization": f"Bearer {token}"}
        async with connect(url.replace("http", "ws") + "/ws", additional_headers=auth) as ws:
            channels = [f"quotes:{s}" for s in symbols]
            await ws.send(json.dumps({"action": "subscribe", "channels": channels}))
            await gaps_while(ws, 1.0)  # warm up: snapshots, first frames
            server, client = psutil.Process(proc.pid), psutil.Process()
            server.cpu_percent()
            client.cpu_percent()
            quiet = await gaps_while(ws, args.duration)
            quiet_cpu, quiet_client = server.cpu_percent(), client.cpu_percent()
            statuses: list[int] = []
            load = asyncio.create_task(logins(url, args.logins, args.duration, statuses))
            busy = await gaps_while(ws, args.duration)
            busy_cpu, busy_client = server.cpu_percent(), client.cpu_percent()
            await load
    finally:
        await stop_all([proc])
    return {
        "without_logins": {
            **latency_ms(quiet),
            "server_cpu_pct": quiet_cpu,
            "client_cpu_pct": quiet_client,
        },
        "with_logins": {
            **latency_ms(busy),
            "server_cpu_pct": busy_cpu,
            "client_cpu_pct": busy_client,
        },
        "logins_answered": {str(s): statuses.count(s) for s in sorted(set(statuses))},
    }


def plot(reports: list[dict[str, Any]], path: Path) -> Path:
    """Bars of the gap percentiles, without and with logins, for each report (Hub version)."""
    labels = ["p50_ms", "p99_ms", "max_ms"]
    series = [
        (f"{phase.replace('_', ' ')} (Hub {r['host'].get('git_commit', '?')})", s)
        for r in reports
        for phase, s in r["summary"].items()
    ]
    width = 0.8 / len(series)
    with figure(path, (9, 4.5)) as (_, ax):
        for k, (name, s) in enumerate(series):
            xs = [i + k * width for i in range(len(labels))]
            ax.bar(xs, [s[label] for label in labels], width, label=name)
        ax.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(labels))], labels)
        ax.set_yscale("log")
        ax.set_ylabel("gap between quote frames, ms (log)")
        first = reports[-1]
        ax.set_title(
            f"Quote delivery gaps without and with {first['settings']['logins_per_s']:.0f}"
            f" logins/s (feed 200 quotes/s; medians of {first['settings']['runs']} runs)",
            fontsize=9,
        )
        ax.legend(fontsize=8)
    return path


async def main(args: argparse.Namespace, root: Path) -> None:
    runs = []
    for run in range(args.runs):
        print(f"run {run + 1}/{args.runs}", file=sys.stderr, flush=True)
        runs.append(await one_run(args, root))
        print(f"  {json.dumps(runs[-1])}", file=sys.stderr, flush=True)
    summary = {
        phase: {
            key: median_of([r[phase] for r in runs], key)
            for key in ("count", "p50_ms", "p99_ms", "max_ms", "server_cpu_pct", "client_cpu_pct")
        }
        for phase in ("without_logins", "with_logins")
    }
    host = environment(("starlette", "uvicorn", "argon2-cffi", "websockets"), tree=root)
    report = {
        "benchmark": "login_gaps",
        "question": __doc__.split("\n\n")[0].replace("\n", " "),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command_line(),
        "settings": {
            "logins_per_s": args.logins,
            "duration_s": args.duration,
            "runs": args.runs,
            "feed_quotes_per_s": 200,
            "symbols": SYMBOLS,
        },
        "host": {**host, "load_average_at_start": load_average()},
        "summary": summary,
        "runs": runs,
    }
    path = write_report("login_gaps", report, args.out)
    print(json.dumps(summary, indent=2))
    print(f"wrote {path} and {plot([report], path.with_suffix('.png'))}", file=sys.stderr)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logins", type=float, default=20.0, help="logins per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--root", default=str(ROOT))
    parser.add_argument("--out", help="JSON path (default benchmarks/results/login_gaps-DATE.json)")
    return parser.parse_args()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--chart"]:  # --chart OUT.png A.json [B.json ...]: one chart for several
        reports = [json.loads(Path(f).read_text()) for f in sys.argv[3:]]
        print(plot(reports, Path(sys.argv[2])))
        sys.exit(0)
    arguments = parse_args()
    asyncio.run(main(arguments, Path(arguments.root).resolve()))
