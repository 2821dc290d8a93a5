"""Replay of a raw Binance WebSocket capture (``../shared/data/binance/ws_capture``): real trades and the real
order book instead of bars.

The capture holds a REST depth snapshot, ``@depth@0ms`` diffs, ``@bookTicker`` and ``@trade`` messages. Here the
book is the real one (snapshot + diffs, forwarded with their own update ids), the best bid/ask the real ones
(market orders take them), the last price moves trade by trade (stops and limits are touched by real trades),
and 1-minute klines are built from the trades.
"""

import gzip
import json
from bisect import insort
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from simulator.instruments import SymbolSpec
from simulator.market import Kline, Step
from simulator.marketstate import BOOK_LEVELS, MARK_SMOOTHING, FundingSchedule, SymbolMarket

MINUTE_MS = 60_000


@dataclass(frozen=True)
class CaptureEvent:
    ts_ms: int  # Binance event time
    kind: str  # "depth", "bookTicker" or "trade"
    data: dict[str, Any]


@dataclass(frozen=True)
class Capture:
    symbol: str
    snapshot: dict[str, Any]
    events: list[CaptureEvent]


def read_capture(path: Path) -> Capture:
    """Parse a capture file: ``<receive ns> <json>`` per line; events from the snapshot on, in file order."""
    snapshot: dict[str, Any] | None = None
    events: list[CaptureEvent] = []
    symbol = ""
    with gzip.open(path, "rt") as lines:
        for number, line in enumerate(lines, start=1):
            _, _, text = line.partition(" ")
            try:
                message = json.loads(text)
            except ValueError:
                raise ValueError(f"{path}:{number}: not a '<ns> <json>' capture line") from None
            if "lastUpdateId" in message:
                snapshot = message
                continue
            if snapshot is None or "stream" not in message:
                continue  # diffs before the snapshot cannot be applied
            data = message["data"]
            kind = {"depthUpdate": "depth", "bookTicker": "bookTicker", "trade": "trade"}.get(data.get("e", ""))
            if kind is None:
                continue
            if kind == "depth" and data["u"] <= snapshot["lastUpdateId"]:
                continue
            symbol = data["s"]
            events.append(CaptureEvent(int(data["E"]), kind, data))
    if snapshot is None or not events:
        raise ValueError(f"{path}: no depth snapshot followed by stream messages")
    return Capture(symbol, snapshot, events)


class CapturedMarket(SymbolMarket):
    """A symbol driven by captured messages: real book, real trades, klines aggregated from the trades."""

    def __init__(self, spec: SymbolSpec, capture: Capture, shift_ms: int = 0) -> None:
        super().__init__(spec, FundingSchedule(), shift_ms)
        self.capture = capture
        # price -> (qty, the price and size text as Binance sent them, forwarded unchanged)
        self._bids: dict[Decimal, tuple[Decimal, str, str]] = {}
        self._asks: dict[Decimal, tuple[Decimal, str, str]] = {}
        self._bid_prices: list[Decimal] = []
        self._ask_prices: list[Decimal] = []
        self._top: dict[str, Any] | None = None
        self._last_depth: dict[str, Any] | None = None
        self._last_trade: dict[str, Any] | None = None
        self._open = self._high = self._low = Decimal(0)
        self._minute = -1
        self.just_closed: Kline | None = None  # the kline a trade of the next minute has just closed
        self.history: list[Kline] = []  # klines closed so far
        for price, qty in capture.snapshot["bids"]:
            self._set_level(self._bids, self._bid_prices, price, qty)
        for price, qty in capture.snapshot["asks"]:
            self._set_level(self._asks, self._ask_prices, price, qty)
        self.update_id = capture.snapshot["lastUpdateId"]
        first_trade = next(e for e in capture.events if e.kind == "trade")
        self.last = self.mark = Decimal(first_trade.data["p"])
        self.data_ts = capture.events[0].ts_ms

    @staticmethod
    def _set_level(
        side: dict[Decimal, tuple[Decimal, str, str]], prices: list[Decimal], price_text: str, qty_text: str
    ) -> None:
        price, qty = Decimal(price_text), Decimal(qty_text)
        if qty == 0:
            if side.pop(price, None) is not None:
                prices.remove(price)
        else:
            if price not in side:
                insort(prices, price)
            side[price] = (qty, price_text, qty_text)

    # --- driving -----------------------------------------------------------------------------------------

    def steps(self) -> Iterator[tuple[CaptureEvent, Step | None]]:
        """Apply each captured event in turn; trades also yield the price move the exchange must match on."""
        for event in self.capture.events:
            self.data_ts = event.ts_ms
            if event.kind == "depth":
                self._apply_depth(event.data)
                yield event, None
            elif event.kind == "bookTicker":
                self._top = event.data
                yield event, None
            else:
                yield event, self._apply_trade(event.data)

    def _apply_depth(self, data: dict[str, Any]) -> None:
        for price, qty in data["b"]:
            self._set_level(self._bids, self._bid_prices, price, qty)
        for price, qty in data["a"]:
            self._set_level(self._asks, self._ask_prices, price, qty)
        self.prev_update_id, self.update_id = data["pu"], data["u"]
        self._last_depth = data

    def _apply_trade(self, data: dict[str, Any]) -> Step:
        price, qty, ts = Decimal(data["p"]), Decimal(data["q"]), int(data["T"])
        start = self.last if self.last is not None else price
        minute = ts // MINUTE_MS * MINUTE_MS
        self.just_closed = None
        if minute != self._minute:
            if self.kline is not None:
                self.history.append(self.kline)
                self.just_closed = self.kline
            self._minute = minute
            self._open = self._high = self._low = price
            self._k_volume = self._k_quote = self._k_taker = self._k_taker_quote = Decimal(0)
            self._k_count = 0
        self._high, self._low = max(self._high, price), min(self._low, price)
        self._k_volume += qty
        self._k_quote += qty * price
        self._k_count += 1
        if not data["m"]:  # the buyer took liquidity
            self._k_taker += qty
            self._k_taker_quote += qty * price
        self._k_high, self._k_low = self._high, self._low
        self.kline = Kline(
            self.spec.symbol,
            "1m",
            minute,
            minute + MINUTE_MS - 1,
            self._open,
            self._high,
            self._low,
            price,
            self._k_volume,
            self._k_quote,
            self._k_count,
            self._k_taker,
            self._k_taker_quote,
        )
        self.kline_closed = False
        self.last, self.last_qty, self.last_buyer_maker = price, qty, bool(data["m"])
        assert self.mark is not None
        self.mark = self.spec.round_price_down(self.mark + (price - self.mark) * MARK_SMOOTHING)
        self.trade_id = int(data["t"])
        self.agg_id = int(data["t"])
        self._last_trade = data
        return Step(self.spec.symbol, self.kline, 1, start, price, ts)

    def closed_klines(self, interval: str, start_ms: int | None, end_ms: int | None, limit: int) -> list[Kline]:
        shift = self.shift_ms
        rows = [
            k
            for k in self.history
            if k.interval == interval
            and (start_ms is None or k.open_time + shift >= start_ms)
            and (end_ms is None or k.open_time + shift <= end_ms)
        ]
        return rows[:limit] if start_ms is not None else rows[-limit:]

    def closed_kline_event(self, k: Kline) -> dict[str, Any]:
        fp, fq = self.spec.fmt_price, self.spec.fmt_qty
        return {
            "e": "kline",
            "E": k.close_time + 1 + self.shift_ms,
            "s": k.symbol,
            "k": {
                "t": k.open_time + self.shift_ms,
                "T": k.close_time + self.shift_ms,
                "s": k.symbol,
                "i": k.interval,
                "f": self.trade_id - k.count,
                "L": self.trade_id - 1,
                "o": fp(k.open),
                "c": fp(k.close),
                "h": fp(k.high),
                "l": fp(k.low),
                "v": fq(k.volume),
                "n": k.count,
                "x": True,
                "q": f"{k.quote_volume:.4f}",
                "V": fq(k.taker_buy_base),
                "Q": f"{k.taker_buy_quote:.4f}",
                "B": "0",
            },
        }

    # --- the real book replaces the synthetic one ------------------------------------------------------------

    @property
    def best_bid(self) -> Decimal:
        if self._top is not None:
            return Decimal(self._top["b"])
        return self._bid_prices[-1]

    @property
    def best_ask(self) -> Decimal:
        if self._top is not None:
            return Decimal(self._top["a"])
        return self._ask_prices[0]

    def book(self) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        bids = [(p, self._bids[p][0]) for p in reversed(self._bid_prices[-BOOK_LEVELS:])]
        asks = [(p, self._asks[p][0]) for p in self._ask_prices[:BOOK_LEVELS]]
        return bids, asks

    def depth_snapshot(self, limit: int) -> dict[str, Any]:
        ts = self.now_ms()
        return {
            "lastUpdateId": self.update_id,
            "E": ts,
            "T": ts,
            "bids": [list(self._bids[p][1:]) for p in reversed(self._bid_prices[-limit:])],
            "asks": [list(self._asks[p][1:]) for p in self._ask_prices[:limit]],
        }

    def depth_update(self) -> dict[str, Any]:
        assert self._last_depth is not None
        return self._shifted(self._last_depth, ("E", "T"))

    def book_ticker(self) -> dict[str, Any]:
        if self._top is None:
            return super().book_ticker()
        return self._shifted(self._top, ("E", "T"))

    def agg_trade(self) -> dict[str, Any]:
        t = self._last_trade
        assert t is not None
        ts = t["T"] + self.shift_ms
        return {
            "e": "aggTrade",
            "E": t["E"] + self.shift_ms,
            "a": t["t"],
            "s": t["s"],
            "p": t["p"],
            "q": t["q"],
            "f": t["t"],
            "l": t["t"],
            "T": ts,
            "m": t["m"],
        }

    def _shifted(self, data: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
        if not self.shift_ms:
            return data
        out = dict(data)
        for name in fields:
            if name in out:
                out[name] = out[name] + self.shift_ms
        return out
