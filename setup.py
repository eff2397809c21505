"""The one thing pyproject.toml cannot say: the top-level `sql/` folder (migrations and seed data)
ships inside the wheel as the package data `hub.sql`, so `hub migrate` works from an installed
wheel without a second copy of the folder in the tree. Everything else is in pyproject.toml."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["hub*", "streaming*"]), "hub.sql"],
    package_dir={"hub.sql": "sql"},
)
