"""Implementations of the service ports: memory twins and the real services."""
