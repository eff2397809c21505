"""The edges: HTTP, streaming glue, gRPC, worker, feed and CLI. Parse, call a service, map errors."""
