import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetMarketDataRequest(_message.Message):
    __slots__ = ("symbols",)
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, symbols: _Optional[_Iterable[str]] = ...) -> None: ...

class GetMarketDataResponse(_message.Message):
    __slots__ = ("market_data", "unknown_symbols")
    MARKET_DATA_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    market_data: _containers.RepeatedCompositeFieldContainer[MarketData]
    unknown_symbols: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, market_data: _Optional[_Iterable[_Union[MarketData, _Mapping]]] = ..., unknown_symbols: _Optional[_Iterable[str]] = ...) -> None: ...

class StreamMarketDataRequest(_message.Message):
    __slots__ = ("symbols",)
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, symbols: _Optional[_Iterable[str]] = ...) -> None: ...

class MarketData(_message.Message):
    __slots__ = ("symbol", "name", "category", "currency", "quote")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    QUOTE_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    name: str
    category: str
    currency: str
    quote: Quote
    def __init__(self, symbol: _Optional[str] = ..., name: _Optional[str] = ..., category: _Optional[str] = ..., currency: _Optional[str] = ..., quote: _Optional[_Union[Quote, _Mapping]] = ...) -> None: ...

class Quote(_message.Message):
    __slots__ = ("bid", "ask", "last", "bid_size", "ask_size", "open", "high", "low", "prev_close", "change", "change_percent", "timestamp", "last_size")
    BID_FIELD_NUMBER: _ClassVar[int]
    ASK_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    BID_SIZE_FIELD_NUMBER: _ClassVar[int]
    ASK_SIZE_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    PREV_CLOSE_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    CHANGE_PERCENT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    LAST_SIZE_FIELD_NUMBER: _ClassVar[int]
    bid: str
    ask: str
    last: str
    bid_size: str
    ask_size: str
    open: str
    high: str
    low: str
    prev_close: str
    change: str
    change_percent: str
    timestamp: _timestamp_pb2.Timestamp
    last_size: str
    def __init__(self, bid: _Optional[str] = ..., ask: _Optional[str] = ..., last: _Optional[str] = ..., bid_size: _Optional[str] = ..., ask_size: _Optional[str] = ..., open: _Optional[str] = ..., high: _Optional[str] = ..., low: _Optional[str] = ..., prev_close: _Optional[str] = ..., change: _Optional[str] = ..., change_percent: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_size: _Optional[str] = ...) -> None: ...

class MarketDataUpdate(_message.Message):
    __slots__ = ("symbol", "quote", "seq")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    QUOTE_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    quote: Quote
    seq: int
    def __init__(self, symbol: _Optional[str] = ..., quote: _Optional[_Union[Quote, _Mapping]] = ..., seq: _Optional[int] = ...) -> None: ...
