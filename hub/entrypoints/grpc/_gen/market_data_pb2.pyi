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

class GetBarsRequest(_message.Message):
    __slots__ = ("symbol", "timeframe", "start", "end", "limit")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    TIMEFRAME_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    timeframe: str
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    limit: int
    def __init__(self, symbol: _Optional[str] = ..., timeframe: _Optional[str] = ..., start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., limit: _Optional[int] = ...) -> None: ...

class GetBarsResponse(_message.Message):
    __slots__ = ("symbol", "timeframe", "bars")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    TIMEFRAME_FIELD_NUMBER: _ClassVar[int]
    BARS_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    timeframe: str
    bars: _containers.RepeatedCompositeFieldContainer[Bar]
    def __init__(self, symbol: _Optional[str] = ..., timeframe: _Optional[str] = ..., bars: _Optional[_Iterable[_Union[Bar, _Mapping]]] = ...) -> None: ...

class Bar(_message.Message):
    __slots__ = ("t", "o", "h", "l", "c", "v", "n", "vw")
    T_FIELD_NUMBER: _ClassVar[int]
    O_FIELD_NUMBER: _ClassVar[int]
    H_FIELD_NUMBER: _ClassVar[int]
    L_FIELD_NUMBER: _ClassVar[int]
    C_FIELD_NUMBER: _ClassVar[int]
    V_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    VW_FIELD_NUMBER: _ClassVar[int]
    t: _timestamp_pb2.Timestamp
    o: str
    h: str
    l: str
    c: str
    v: str
    n: int
    vw: str
    def __init__(self, t: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., o: _Optional[str] = ..., h: _Optional[str] = ..., l: _Optional[str] = ..., c: _Optional[str] = ..., v: _Optional[str] = ..., n: _Optional[int] = ..., vw: _Optional[str] = ...) -> None: ...
