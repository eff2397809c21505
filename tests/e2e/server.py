"""Start `hub serve` as a real subprocess on free ports, and stop it with SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# For tests that start a feed but read no price history: no backfill, so the process is ready
# at once and spends no CPU on a year of bars (docs/market-history.md).
NO_HISTORY = {"HUB_BACKFILL_MINUTE_DAYS": "0", "HUB_BACKFILL_DAILY_DAYS": "0"}


@dataclass
class RunningServer:
    url: str
    grpc_port: int
    process: subprocess.Popen[str]

    def stop(self) -> tuple[int, str]:
        """SIGTERM, as an orchestrator would; return the exit code and everything printed."""
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=30)
        return self.process.returncode, out


@contextmanager
def hub_serve(env: dict[str, str] | None = None, timeout: float = 30) -> Iterator[RunningServer]:
    port, grpc_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hub.entrypoints.cli",
            "serve",
            "--port",
            str(port),
            "--grpc-port",
            str(grpc_port),
        ],
        # Every test registers its users from 127.0.0.1, and the per-address registration
        # limit is counted in the shared Redis across runs: lift it unless a test sets it.
        env={**os.environ, "HUB_REGISTER_LIMIT_PER_CLIENT": "100000", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = RunningServer(f"http://127.0.0.1:{port}", grpc_port, process)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"hub serve exited early:\n{process.communicate()[0]}")
            try:
                if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("hub serve did not become ready")
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        elif process.stdout is not None and not process.stdout.closed:
            process.stdout.close()  # it died by a test's hand (SIGKILL), nobody read it
