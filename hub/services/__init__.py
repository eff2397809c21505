"""Use cases. They depend on ports (typing.Protocol), never on concrete adapters."""
