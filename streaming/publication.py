"""A publication: data encoded once by the publisher, rendered once per client-facing name."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from streaming.channels import ChannelKind

T = TypeVar("T")


class _Wire(msgspec.Struct, frozen=True):
    type: str
    channel: str
    seq: int
    data: msgspec.Raw


_encoder = msgspec.json.Encoder()


class Publication:
    """One message published on a channel, shared by every subscriber of that channel.

    `data` holds the JSON bytes exactly as the publisher encoded them; `render` splices them,
    without re-parsing, into the client message and caches the result per client-facing channel
    name, so N subscribers cost one encode (usually all of them use the same name).
    """

    __slots__ = ("_more", "_name", "_text", "channel", "data", "kind", "seq", "type")

    def __init__(self, channel: str, kind: ChannelKind, seq: int, type_: str, data: bytes) -> None:
        self.channel = channel
        self.kind = kind
        self.seq = seq
        self.type = type_
        self.data = data
        self._name: str | None = None
        self._text = ""
        self._more: dict[str, str] | None = None

    def render(self, name: str) -> str:
        """The client message JSON for this publication under the client-facing `name`."""
        if name == self._name:
            return self._text
        if self._name is None:
            self._name, self._text = name, self._encode(name)
            return self._text
        if self._more is None:
            self._more = {}
        text = self._more.get(name)
        if text is None:
            text = self._more[name] = self._encode(name)
        return text

    def _encode(self, name: str) -> str:
        wire = _Wire(self.type, name, self.seq, msgspec.Raw(self.data))
        return _encoder.encode(wire).decode()

    def decode(self, type_: type[T] = Any) -> T:  # type: ignore[assignment]
        """Decode `data` (e.g. into a Struct type) for in-process consumers."""
        return msgspec.json.decode(self.data, type=type_)

    def __repr__(self) -> str:
        return f"Publication({self.channel!r}, seq={self.seq}, type={self.type!r})"
