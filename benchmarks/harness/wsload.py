"""The C load client (benchmarks/wsload/wsload.c): built from source with `cc`, driven over
stdin/stdout (JSON lines), with browser-like clients (an `auth` frame per socket, then a
subscribe frame).

Control protocol: wsload connects at startup, prints one {"event":"ready",...} line once every
connection is ready or failed, then one {"event":"stats",...} line per "stats" line on stdin;
"quit" or EOF ends it."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import shutil
import subprocess
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .config import BENCH, JWT_SECRET

SOURCE = BENCH / "wsload" / "wsload.c"


def build(directory: Path | None = None) -> tuple[Path, str]:
    """Compile wsload into `directory` (a new temp dir by default): the binary and the
    compiler's warnings. Needs cc and zlib's headers."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SystemExit("the benchmark needs a C compiler (cc) to build its load client")
    out = (directory or Path(tempfile.mkdtemp(prefix="wsload-"))) / "wsload"
    done = subprocess.run(
        [cc, "-O2", "-Wall", "-Wextra", "-o", str(out), str(SOURCE), "-lz"],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise RuntimeError(f"building wsload failed:\n{done.stderr}")
    return out, done.stderr.strip()


class WsLoad:
    """One wsload process."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.stderr: list[str] = []
        self._stderr_task = asyncio.create_task(self._drain()) if proc.stderr else None

    @classmethod
    async def start(
        cls,
        binary: Path,
        port: int,
        clients: int,
        *extra: str,
        cpus: str | None = None,
        capture_stderr: bool = False,
    ) -> WsLoad:
        """`cpus`: pin it with taskset; `capture_stderr`: keep its stderr in .stderr."""
        argv = ["taskset", "-c", cpus] if cpus else []
        argv += [str(binary), "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--clients", str(clients), *extra]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE if capture_stderr else None,
        )
        return cls(proc)

    async def _drain(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.stderr.append(line.decode().rstrip())

    async def event(self, seconds: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), seconds)
        if not raw:
            raise RuntimeError("wsload exited: " + "\n".join(self.stderr[-5:]))
        result: dict[str, Any] = json.loads(raw)
        return result

    async def ready(self, seconds: float = 300) -> dict[str, Any]:
        return await self.event(seconds)

    async def stats(self, seconds: float = 30) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"stats\n")
        await self.proc.stdin.drain()
        return await self.event(seconds)

    async def stop(self, seconds: float = 20) -> int:
        """ "quit", then SIGKILL after `seconds`; its exit code."""
        if self.proc.returncode is None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                assert self.proc.stdin is not None
                self.proc.stdin.write(b"quit\n")
                await self.proc.stdin.drain()
            try:
                await asyncio.wait_for(self.proc.wait(), seconds)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._stderr_task is not None:
            await self._stderr_task
        return self.proc.returncode or 0


def cpu_pct(stats: dict[str, Any]) -> float:
    """wsload's own CPU over a stats interval, in % of a core."""
    busy = float(stats["cpu_user_s"] + stats["cpu_sys_s"])
    return round(100 * busy / float(stats["interval_s"]), 1)


def access_tokens() -> Any:
    """Hub's own token minter class, where this tree has it: hub.adapters.jwt_tokens (PyJWT in
    an adapter), or hub.services.tokens in trees from before that move."""
    for module, name in (
        ("hub.adapters.jwt_tokens", "JwtAccessTokens"),
        ("hub.services.tokens", "AccessTokens"),
    ):
        with contextlib.suppress(ModuleNotFoundError):
            return getattr(importlib.import_module(module), name)
    raise RuntimeError("no access-token minter found in hub")


def auth_file(user_ids: list[uuid.UUID], sockets: int, workdir: Path) -> Path:
    """One `auth` frame per socket (socket i is user i mod len(user_ids)), tokens minted with
    the benchmark's JWT secret and valid for 3 hours, as lines for wsload's --send-file."""
    from hub.domain.users import Role

    tokens = access_tokens()(JWT_SECRET, ttl=timedelta(hours=3), issuer="hub", audience="hub-api")
    now = datetime.now(UTC)
    frames = [
        json.dumps({"action": "auth", "token": tokens.issue(uid, Role.USER, now)})
        for uid in user_ids
    ]
    path = workdir / "auth.txt"
    path.write_text("\n".join(frames[i % len(frames)] for i in range(sockets)) + "\n")
    return path


def subscribed_clients(
    clients: int, channels: list[str], workdir: Path, user_ids: list[uuid.UUID] | None = None
) -> list[str]:
    """wsload arguments for browser-like clients: a per-connection auth frame (a distinct user
    each, unless `user_ids` are given), one subscribe frame, and ready once every channel has
    answered `subscribed`."""
    users = user_ids or [uuid.uuid4() for _ in range(clients)]
    auth = auth_file(users, clients, workdir)
    subscribe = json.dumps({"action": "subscribe", "channels": channels})
    return [
        "--send-file",
        str(auth),
        "--send",
        subscribe,
        "--ready-marker",
        '"subscribed"',
        "--ready-count",
        str(len(channels)),
    ]
