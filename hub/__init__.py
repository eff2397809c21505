"""Hub: an open-source, real-time brokerage backend."""

__version__ = "0.1.0"
