"""The one thing pyproject.toml cannot say: the top-level `sql/` folder (migrations and seed data)
ships inside the wheel as the package data `hub.sql`, so `hub migrate` works from an installed
wheel without a second copy of the folder in the tree. Everything else is in pyproject.toml."""

from setuptools import find_packages, setup

# Its two folders are listed as (data-only) packages too: setuptools warns about importable
# folders that are shipped but not listed.
SQL = ["hub.sql", "hub.sql.migrations", "hub.sql.seed"]

setup(
    packages=[*find_packages(include=["hub*", "streaming*"]), *SQL],
    package_dir={"hub.sql": "sql"},
)
