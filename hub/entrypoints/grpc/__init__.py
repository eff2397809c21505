"""gRPC services of Hub."""
