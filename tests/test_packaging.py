"""The wheel carries the top-level sql/ folder (migrations and seed data) as `hub.sql`, so
`hub migrate` works from an install; and a checkout reads the same single copy."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from hub.adapters.sql_files import sql_folder

ROOT = Path(__file__).resolve().parent.parent


def shipped() -> set[str]:
    return {
        f"{kind}/{p.name}"
        for kind, pattern in (("migrations", "*.sql"), ("seed", "*.csv"))
        for p in (ROOT / "sql" / kind).glob(pattern)
    }


def test_a_checkout_reads_the_top_level_folder() -> None:
    folder = sql_folder()
    assert Path(str(folder)).resolve() == ROOT / "sql"
    assert not (ROOT / "hub" / "sql").exists(), "a second copy of sql/ inside the package"


def test_the_wheel_carries_migrations_and_seed_data(tmp_path: Path) -> None:
    # From a copy of what the wheel is built from: a checkout's own build/ folder (left by an
    # earlier build) must not leak stale files into what is checked. No build isolation: the
    # installed setuptools builds it, nothing is downloaded.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("hub", "streaming", "sql"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*cmd, "-w", str(tmp_path), str(source)], check=True, timeout=300)
    (wheel,) = tmp_path.glob("hub-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    packaged = {n.removeprefix("hub/sql/") for n in names if n.startswith("hub/sql/")}
    assert shipped() and packaged == shipped()
    assert "hub/adapters/sql_files.py" in names and "streaming/__init__.py" in names
