"""Where things are and which services the benchmarks use, read once from the environment."""

from __future__ import annotations

import os
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
# Hub's processes run from this tree: another checkout (e.g. a `git worktree` of an older commit)
# measures that code with this benchmark, for before/after figures in one method.
HUB_ROOT = Path(os.environ.get("HUB_BENCH_ROOT", ROOT)).resolve()
POSTGRES_URL = os.environ.get("HUB_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_BASE = os.environ.get("HUB_BENCH_REDIS_URL", "redis://127.0.0.1:6379")
AMQP_URL = os.environ.get("HUB_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
# Cores (taskset lists) for the server under test and for the load client (and the feed), where
# a benchmark pins them so that neither takes the other's core.
SERVER_CPUS, CLIENT_CPUS = "0", "1"
JWT_SECRET = "bench-secret-0123456789abcdefghijklmnopqrstuv"
PASSWORD = "Ben4ch-Load-Gen!"
# Redis databases, one per benchmark so that a cleanup never reaches another one's keys:
# 10 reads, 11 market_data, 12 orders, 13 fanout_real_* and soak, 14 fanout_scale_market,
# 15 the test suite.
