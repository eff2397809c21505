from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import streaming

EXPECTED = [
    "AuthenticationFailed",
    "Authorizer",
    "BrokerUnavailable",
    "ChannelKind",
    "CloseCode",
    "ConfigurationError",
    "Engine",
    "EngineNotRunning",
    "ErrorCode",
    "Limits",
    "Principal",
    "Publication",
    "SlowConsumer",
    "StreamingError",
    "Subscription",
    "SubscriptionLost",
    "TooManyConnections",
]


def test_all_is_the_expected_sorted_list() -> None:
    assert streaming.__all__ == EXPECTED
    assert sorted(streaming.__all__) == streaming.__all__


def test_every_exported_name_exists() -> None:
    for name in streaming.__all__:
        assert getattr(streaming, name).__module__.startswith("streaming")


def test_errors_share_one_base() -> None:
    for name in streaming.__all__:
        obj = getattr(streaming, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, streaming.StreamingError)


def test_streaming_never_imports_hub() -> None:
    root = pathlib.Path(streaming.__file__).parent
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n == "hub" or n.startswith("hub.") for n in names), path


def test_py_typed_marker() -> None:
    assert (pathlib.Path(streaming.__file__).parent / "py.typed").exists()


def test_the_engine_needs_no_web_framework() -> None:
    """The transports (streaming.websocket, streaming.sse, streaming.direct) are the
    application's to mount; `import streaming` loads no web framework or server."""
    code = "import sys, streaming; print(sorted({m.split('.')[0] for m in sys.modules}))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    for framework in ["starlette", "sse_starlette", "uvicorn", "websockets", "redis"]:
        assert f"'{framework}'" not in loaded, framework
