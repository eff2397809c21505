"""py-spy recordings of Hub's processes under load, and summaries of their collapsed stacks."""

from __future__ import annotations

import asyncio
import collections
import shutil
import sys
from pathlib import Path
from typing import Any

from .config import ROOT
from .httpload import open_loop


def py_spy() -> str | None:
    return shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")


async def spawn_record(
    exe: str, pid: int, seconds: float, flags: list[str], fmt: str, output: Path, stderr: int
) -> asyncio.subprocess.Process:
    """`py-spy record` of one process, started."""
    return await asyncio.create_subprocess_exec(
        exe,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(int(seconds)),
        *flags,
        "--format",
        fmt,
        "--output",
        str(output),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=stderr,
    )


async def record_each(
    pids: dict[str, int], seconds: float, out: Path, stem: str
) -> list[asyncio.subprocess.Process]:
    """Start py-spy on every process, not pausing it (speedscope JSON and raw stacks, 250 Hz):
    out/STEM-NAME.{json,txt}. Await the returned processes for the files."""
    exe = py_spy()
    if exe is None:
        print("py-spy not installed: no profile", file=sys.stderr)
        return []
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    flags = ["--rate", "250", "--nonblocking"]
    return [
        await spawn_record(
            exe, pid, seconds, flags, fmt, out / f"{stem}-{name}.{ext}", asyncio.subprocess.DEVNULL
        )
        for name, pid in pids.items()
        for fmt, ext in (("speedscope", "json"), ("raw", "txt"))
    ]


async def record_raw(exe: str, pid: int, seconds: float, flags: list[str], raw: Path) -> int:
    """py-spy record in raw (collapsed) format; its exit code (its stderr's tail printed)."""
    spy = await spawn_record(exe, pid, seconds, flags, "raw", raw, asyncio.subprocess.PIPE)
    _, err = await spy.communicate()
    if spy.returncode:
        print(err.decode(errors="replace")[-500:], file=sys.stderr)
    return spy.returncode or 0


def _frames(stack: str) -> list[tuple[str, str]]:
    """`name (file:line)` frames of one collapsed stack -> (name, file), line dropped."""
    frames = []
    for frame in stack.split(";"):
        name, _, where = frame.partition(" (")
        file = where.removesuffix(")")
        head, _, tail = file.rpartition(":")
        frames.append((name, head if head and tail.isdigit() else file))
    return frames


def summarize_stacks(raw: Path, top: int = 30) -> dict[str, Any]:
    """py-spy raw (collapsed) stacks -> shares of the samples: inclusive per function, self per
    function, self per (leaf <- nearest Python frame) (who calls the C that the time is in), and
    self per top-level package of the nearest Python frame (the first component of the path py-spy
    prints: asyncpg, uvicorn, hub, ...; C code is charged to the Python code that called it)."""
    inclusive: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    caller: collections.Counter[str] = collections.Counter()
    package: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f"{name} ({file})" for name, file in _frames(stack)]
        files = [file for _, file in _frames(stack)]
        for f in set(frames):
            inclusive[f] += n
        leaf[frames[-1]] += n
        python = [k for k, file in enumerate(files) if file.endswith(".py") or "<" in file]
        nearest = python[-1] if python else len(frames) - 1
        if nearest != len(frames) - 1:
            caller[f"{frames[-1]} <- {frames[nearest]}"] += n
        file = files[nearest]
        package[file.split("/", 1)[0].removesuffix(".py") if "/" in file else file] += n

    def share(counter: collections.Counter[str]) -> list[list[Any]]:
        return [[k, round(100 * v / max(total, 1), 1)] for k, v in counter.most_common(top)]

    # The loop's own frames are in every sample: leave them out of the inclusive list.
    inclusive = collections.Counter({k: v for k, v in inclusive.items() if v < 0.99 * total})
    return {
        "samples": total,
        "self_pct_by_package": share(package),
        "self_pct": share(leaf),
        "native_self_pct_by_python_caller": share(caller),
        "inclusive_pct": share(inclusive),
    }


TITLES = {
    "self_pct_by_package": "self % by package of the nearest Python frame",
    "self_pct": "self % by function (the leaf frame)",
    "native_self_pct_by_python_caller": "self % of C leaves, by the Python frame above them",
    "inclusive_pct": "inclusive % by function",
}


def summary_text(summary: dict[str, Any], head: list[str]) -> str:
    """A summarize_stacks result as text, under `head`."""
    lines = list(head)
    for name, title in TITLES.items():
        if summary[name]:
            lines += ["", f"{title}:", *(f"  {v:5.1f}  {k}" for k, v in summary[name])]
    return "\n".join(lines) + "\n"


def shown(path: Path) -> str:
    """The path relative to the repository when it is inside it."""
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def slug(key: str) -> str:
    return key.strip("/").replace("/", "_").replace("{", "").replace("}", "") or "root"


async def profile_route(
    key: str,
    port: int,
    requests: list[bytes],
    pid: int,
    out: Path,
    *,
    rate: float,
    seconds: float,
    connections: int,
    nonblocking: bool,
    native: bool,
) -> dict[str, Any]:
    """py-spy `seconds` of the process `pid` (`hub serve`) while GET route `key` is offered open
    loop at `rate`: the summary of its stacks, written to out/ as raw stacks and as text."""
    exe = py_spy()
    if exe is None:
        return {"route": key, "error": "py-spy not installed"}
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    stem = slug(key) + (".native" if native else "")
    raw = out / f"{stem}.raw.txt"
    # --gil: only the thread holding the GIL is sampled (idle pool threads would count as busy);
    # blocking (the default): the process is paused per sample, so no torn stacks.
    flags = ["--rate", "250", "--gil"]
    flags += ["--nonblocking"] if nonblocking else []
    flags += ["--native"] if native else []
    warmup = 1.0

    async def record() -> int:
        await asyncio.sleep(warmup)
        return await record_raw(exe, pid, seconds, flags, raw)

    spy_task = asyncio.create_task(record())
    result = await open_loop(
        "127.0.0.1",
        port,
        lambda i: requests[i % len(requests)],
        rate=rate,
        duration=seconds + 1.5,
        warmup=warmup,
        connections=connections,
        drain_timeout=10.0,
    )
    code = await spy_task
    if code or not raw.exists():
        return {"route": key, "native": native, "error": f"py-spy exited with {code}"}
    summary = summarize_stacks(raw)
    text = out / f"{stem}.summary.txt"
    lines = [
        f"py-spy record {' '.join(flags)}: {seconds:g} s of `hub serve` under "
        f"{rate:g} req/s of GET {key}",
        f"{summary['samples']} samples holding the GIL; {result.completed_per_s}/s answered, "
        f"statuses {result.statuses}",
    ]
    text.write_text(summary_text(summary, lines))
    return {
        "route": key,
        "native": native,
        "py_spy_flags": flags,
        "raw_stacks": shown(raw),
        "summary_file": shown(text),
        "under_load": {"completed_per_s": result.completed_per_s, "statuses": result.statuses},
        **summary,
    }
