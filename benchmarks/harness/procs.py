"""Processes: free ports, spawning with a log, readiness, and stopping (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from .config import BENCH, HUB_ROOT


def raise_nofile() -> int:
    """Raise the soft open-file limit to the hard limit (thousands of sockets); return it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def bench_python(module: str, *args: str) -> list[str]:
    """argv that runs `main(argv)` of a harness module (e.g. "harness.peers") in a new Python
    process, whatever its working directory."""
    boot = f"import sys; sys.path.insert(0, {str(BENCH)!r}); from {module} import main; main()"
    return [sys.executable, "-c", boot, *args]


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


def spawn(name: str, argv: list[str], env: dict[str, str], logdir: Path) -> Proc:
    """Start argv in HUB_ROOT with env added to ours, its output in logdir/NAME.log."""
    log = logdir / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            argv, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, cwd=HUB_ROOT
        )
    return Proc(name, popen, log)


async def wait_ready(
    url: str, proc: Proc, seconds: float = 60, headers: dict[str, str] | None = None
) -> None:
    """Until GET url answers 200; fails if the process exits or the time runs out."""
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=2, headers=headers) as client:
        while True:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited early:\n{proc.tail()}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(url)).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{proc.name} did not become ready:\n{proc.tail()}")
            await asyncio.sleep(0.1)


async def wait_listening(port: int, tries: int = 200, *, closed: bool = True) -> None:
    """Until 127.0.0.1:port accepts a connection, polling every 50 ms (gives up silently).
    `closed`: wait for the probe connection to close too."""
    for _ in range(tries):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        if closed:
            await writer.wait_closed()
        return


async def stop_all(procs: list[Proc], seconds: float = 15) -> None:
    """SIGTERM each (serve last: workers first drain), then SIGKILL what is still alive."""
    for proc in procs:
        if proc.popen.poll() is None:
            proc.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + seconds
    for proc in procs:
        while proc.popen.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if proc.popen.poll() is None:
            proc.popen.kill()
            proc.popen.wait()


async def terminate(process: asyncio.subprocess.Process, seconds: float = 15) -> None:
    """SIGTERM an asyncio child (closing its stdin first, if piped), SIGKILL after `seconds`."""
    if process.stdin is not None:
        process.stdin.close()
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), seconds)
    except TimeoutError:
        process.kill()
        await process.wait()
