"""CPU meters: processes, the whole host, and the services' processes (PostgreSQL, Redis)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psutil


def busy_s(before: Any, after: Any) -> float:
    """User + system seconds between two `cpu_times()` of one process."""
    return float((after.user - before.user) + (after.system - before.system))


def cpu_seconds(proc: psutil.Process) -> float:
    """The process's user + system seconds so far (0 once it is gone)."""
    try:
        t = proc.cpu_times()
        return float(t.user + t.system)
    except psutil.Error:
        return 0.0


class CpuMeter:
    """CPU used by some processes (and their children) between start() and stop(), in % of one
    core."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self._start: dict[str, float] = {}
        self._t0 = 0.0

    def _busy(self, proc: psutil.Process) -> float:
        try:
            t = proc.cpu_times()
            kids = sum(c.cpu_times().user + c.cpu_times().system for c in proc.children())
            return float(t.user + t.system + kids)
        except psutil.Error:
            return 0.0

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._start = {name: self._busy(p) for name, p in self._procs.items()}

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self._t0
        return {
            name: round(100 * (self._busy(p) - self._start[name]) / wall, 1)
            for name, p in self._procs.items()
        }


class HostCpu:
    """Whole-host busy % between start() and stop() (100 = every core busy)."""

    def start(self) -> None:
        self._t0 = psutil.cpu_times()

    def stop(self) -> float:
        t1 = psutil.cpu_times()
        total = sum(t1) - sum(self._t0)
        idle = (t1.idle + t1.iowait) - (self._t0.idle + self._t0.iowait)
        return round(100 * (1 - idle / total), 1) if total > 0 else float("nan")


class ServiceCpu:
    """CPU seconds of every process with one of these names (PostgreSQL backends, Redis)."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self._start: dict[int, float] = {}

    def _now(self) -> dict[int, float]:
        seen = {}
        for p in psutil.process_iter(["name"]):
            if p.info["name"] in self.names:
                seen[p.pid] = cpu_seconds(p)
        return seen

    def start(self) -> None:
        self._start = self._now()

    def stop(self) -> float:
        end = self._now()
        return sum(v - self._start.get(pid, 0.0) for pid, v in end.items())


async def idle_cpu(pid: int, seconds: float) -> float:
    """CPU seconds per second the process uses with no requests (its background work)."""
    proc = psutil.Process(pid)
    c0, t0 = cpu_seconds(proc), time.perf_counter()
    await asyncio.sleep(seconds)
    return (cpu_seconds(proc) - c0) / (time.perf_counter() - t0)
