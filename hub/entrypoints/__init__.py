"""The edges: HTTP, streaming glue, gRPC, worker, feed and CLI.

Each parses, calls a service, and maps domain errors; nothing else.
"""
