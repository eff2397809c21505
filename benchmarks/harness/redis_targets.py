"""Redis servers a benchmark starts for itself (cluster.py), on free ports, nothing persisted,
pinned to given cores: `single` (one redis-server) and `cluster` (3 masters + 3 replicas: the
tests' local cluster, tests/integration/cluster/redis_cluster.py, the one copy of that code).
Each gives broker URLs under a prefix, its processes' CPU, the commands its masters ran, and
deletes its keys; `stop()` kills every process and removes its temporary directory. `Window`:
what a measured step cost the target, some processes and each core."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis
import redis.asyncio as aioredis

from .config import ROOT
from .procs import free_port
from .rate_servers import RateServer

sys.path.insert(0, str(ROOT))  # `tests` is a package of this checkout, not an installed one
from tests.integration.cluster.redis_cluster import ClusterUnavailable, cli, start_cluster

__all__ = ["ClusterUnavailable", "RedisTarget", "Window", "cpu_list", "started"]


def cpu_list(spec: str) -> list[int]:
    """A taskset list ("1", "0,2", "2-3") as core numbers."""
    cores: list[int] = []
    for part in spec.split(","):
        low, _, high = part.partition("-")
        cores += range(int(low), int(high or low) + 1)
    return cores


@dataclass
class RedisTarget:
    """One Redis under test: `roles` maps each node's port to "master" or "replica"."""

    name: str
    cluster: bool
    roles: dict[int, str]
    pids: dict[int, int]
    stop: Callable[[], None]
    _procs: dict[int, psutil.Process] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._procs = {port: psutil.Process(pid) for port, pid in self.pids.items()}

    @property
    def masters(self) -> list[int]:
        return [port for port, role in self.roles.items() if role == "master"]

    def broker_url(self, prefix: str) -> str:
        """The streaming broker's URL: any node, database 0, `cluster=true` on a cluster."""
        flag = "&cluster=true" if self.cluster else ""
        return f"redis://127.0.0.1:{self.masters[0]}/0?prefix={prefix}{flag}"

    def pin(self, cores: list[int]) -> None:
        for proc in self._procs.values():
            proc.cpu_affinity(cores)

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far (user + system, threads included) of the masters and replicas."""
        seconds = {"master": 0.0, "replica": 0.0}
        for port, proc in self._procs.items():
            times = proc.cpu_times()
            seconds[self.roles[port]] += times.user + times.system
        return seconds

    def calls(self) -> dict[str, int]:
        """Commands the masters have run so far, by name (INFO commandstats; the commands a
        script runs are counted too)."""
        total: dict[str, int] = {}
        for port in self.masters:
            with redis.Redis(port=port) as node:
                stats = node.info("commandstats")
            for key, value in stats.items():
                name = key.removeprefix("cmdstat_")
                total[name] = total.get(name, 0) + int(value["calls"])
        return total

    async def delete_keys(self, prefix: str) -> int:
        """Delete every key under `prefix` on every master (one key per DEL: keys of different
        slots cannot share a command on a cluster); how many there were."""
        deleted = 0
        for port in self.masters:
            client = aioredis.Redis(port=port)
            try:
                keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
                pipe = client.pipeline(transaction=False)
                for key in keys:
                    pipe.delete(key)
                deleted += sum(await pipe.execute()) if keys else 0
            finally:
                await client.aclose()
        return deleted


def start_single() -> RedisTarget:
    """One redis-server with the cluster nodes' settings, minus the cluster."""
    root = Path(tempfile.mkdtemp(prefix="hub-bench-redis-"))
    port = free_port()
    process = subprocess.Popen(
        [
            "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(root),
            "--save", "", "--appendonly", "no", "--logfile", str(root / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def stop() -> None:
        process.kill()
        process.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)

    deadline = time.monotonic() + 15
    while cli(port, "PING") != "PONG":
        if time.monotonic() > deadline or process.poll() is not None:
            stop()
            raise ClusterUnavailable(f"redis-server on port {port} did not answer PING")
        time.sleep(0.05)
    return RedisTarget("single", False, {port: "master"}, {port: process.pid}, stop)


def start_3x2() -> RedisTarget:
    """3 masters with a replica each, once every node's CLUSTER SLOTS lists the replicas (so
    that a reliable publish waits for one, as in production with replicas)."""
    local = start_cluster()
    try:
        deadline = time.monotonic() + 30
        while not local.replicas_listed():
            if time.monotonic() > deadline:
                raise ClusterUnavailable("CLUSTER SLOTS never listed the replicas")
            time.sleep(0.2)
    except BaseException:
        local.stop()
        raise
    roles = {p: "master" for p in local.masters} | {p: "replica" for p in local.replicas}
    pids = {port: proc.pid for port, proc in local.processes.items()}
    return RedisTarget("cluster", True, roles, pids, local.stop)


class Window:
    """From creation to close(): CPU seconds of the Redis target (masters, replicas), of some
    processes and of this one; each core's busy %; the commands the masters ran."""

    def __init__(self, target: RedisTarget, procs: dict[str, RateServer]) -> None:
        self.target, self.procs = target, procs
        self.me = psutil.Process()
        self.t0 = time.monotonic()
        self.redis0, self.calls0 = target.cpu(), target.calls()
        self.procs0 = {name: p.cpu() for name, p in procs.items()}
        self.me0 = sum(self.me.cpu_times()[:2])
        self.cores0 = psutil.cpu_times(percpu=True)

    def close(self) -> dict[str, Any]:
        wall = time.monotonic() - self.t0
        cores1 = psutil.cpu_times(percpu=True)
        calls = self.target.calls()
        redis1 = self.target.cpu()

        def busy(a: Any, b: Any) -> float:
            total = sum(b) - sum(a)
            idle = (b.idle + b.iowait) - (a.idle + a.iowait)
            return round(100 * (1 - idle / total), 1) if total > 0 else float("nan")

        return {
            "wall": wall,
            "redis": {role: redis1[role] - self.redis0[role] for role in redis1},
            "procs": {name: p.cpu() - self.procs0[name] for name, p in self.procs.items()},
            "client": sum(self.me.cpu_times()[:2]) - self.me0,
            "cores": [busy(a, b) for a, b in zip(self.cores0, cores1, strict=True)],
            "calls": {k: v - self.calls0.get(k, 0) for k, v in calls.items()},
        }


@contextlib.asynccontextmanager
async def started(cores: list[int] | None) -> AsyncIterator[dict[str, RedisTarget]]:
    """Both targets, pinned to `cores` if given; on exit every process is killed and every
    directory removed."""
    targets: dict[str, RedisTarget] = {}
    try:
        targets["single"] = await asyncio.to_thread(start_single)
        targets["cluster"] = await asyncio.to_thread(start_3x2)
        for target in targets.values():
            if cores:
                target.pin(cores)
        yield targets
    finally:
        for target in targets.values():
            target.stop()
