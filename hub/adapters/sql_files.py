"""Where the migrations and seed data are: the top-level `sql/` folder. One copy in the tree: the
wheel build packages it as `hub.sql` (setup.py maps the folder), so `hub migrate` works from an
installed wheel; a source checkout or an editable install reads the folder itself."""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable
from pathlib import Path


def sql_folder() -> Traversable:
    try:
        return resources.files("hub.sql")  # installed from a wheel
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "sql"  # hub/adapters/ -> the checkout
