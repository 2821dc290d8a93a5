"""The strategy's own record of trades and exit counters, as plain Python data for the reports.

Kept by the strategy rather than read from the cache, because long backtests purge closed positions and orders
from the cache (nodes/backtest/speed.py), and because the exit reason is a strategy notion.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass

from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.position import Position

from strategies.trade import Trade

COUNTER_KEYS = ("entries", "tp1", "tp2", "stops", "breakeven", "dynamic", "refused")
EXIT_REASONS = ("TP1+TP2", "TP1+BREAKEVEN", "STOP", "DYNAMIC", "FLATTEN", "END_OF_DATA")


@dataclass(frozen=True)
class TradeRecord:
    instrument: str
    direction: str
    entry_time_ns: int
    exit_time_ns: int
    entry_price: float
    exit_price: float
    quantity: float  # peak quantity of the position
    realized_pnl: float  # settlement currency, after fees and funding (unrealised at the last price for END_OF_DATA)
    commissions: float
    funding: float  # paid (negative) or received (positive) while open
    exit_reason: str
    tp1_hit: bool
    leverage: int
    strength: float
    dynamic_adjustments: int

    @classmethod
    def of_trade(
        cls,
        trade: Trade,
        exit_time_ns: int,
        exit_price: float,
        quantity: float,
        realized_pnl: float,
        commissions: float,
        exit_reason: str,
    ) -> "TradeRecord":
        """The record of ``trade`` ending as given: what the trade itself knows is copied from it."""
        return cls(
            instrument=str(trade.instrument_id),
            direction=trade.direction,
            entry_time_ns=trade.opened_ns,
            exit_time_ns=exit_time_ns,
            entry_price=trade.entry,
            exit_price=exit_price,
            quantity=quantity,
            realized_pnl=realized_pnl,
            commissions=commissions,
            funding=trade.funding,
            exit_reason=exit_reason,
            tp1_hit=trade.tp1_done,
            leverage=trade.leverage,
            strength=trade.strength,
            dynamic_adjustments=trade.dynamic_adjustments,
        )

    @property
    def duration_s(self) -> float:
        return (self.exit_time_ns - self.entry_time_ns) / 1e9

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["duration_s"] = self.duration_s
        return d


def commissions(position: Position | None) -> float:
    return sum(m.as_double() for m in position.commissions()) if position is not None else 0.0


def open_record(trade: Trade, position: Position, instrument: Instrument, price: float, now: int) -> TradeRecord:
    """An open trade as if it ended now at ``price`` (END_OF_DATA): realised + unrealised + funding."""
    realized = position.realized_pnl.as_double() if position.realized_pnl is not None else 0.0
    pnl = realized + position.unrealized_pnl(instrument.make_price(price)).as_double() + trade.funding
    quantity = position.peak_qty.as_double()
    return TradeRecord.of_trade(trade, now, price, quantity, pnl, commissions(position), "END_OF_DATA")


def ledger_rows(
    records: Iterable[TradeRecord],
    open_trades: Iterable[Trade],
    open_position: Callable[[Trade], Position | None],
    instruments: Mapping[InstrumentId, Instrument],
    last_close: Mapping[InstrumentId, float],
    now: int,
) -> list[dict[str, object]]:
    """The closed trades' records, then ``open_trades`` marked at the last close (those with a price)."""
    rows = [r.to_dict() for r in records]
    for trade in open_trades:
        position = open_position(trade)
        price = last_close.get(trade.instrument_id)
        if position is not None and price is not None:
            instrument = instruments[trade.instrument_id]
            rows.append(open_record(trade, position, instrument, price, now).to_dict())
    return rows


class Counters:
    """Exit counters per symbol and in total."""

    def __init__(self) -> None:
        self._per_symbol: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTER_KEYS, 0))

    def add(self, instrument: str, key: str, n: int = 1) -> None:
        if key not in COUNTER_KEYS:
            raise KeyError(f"unknown counter {key!r}; known: {COUNTER_KEYS}")
        self._per_symbol[instrument][key] += n

    def get(self, key: str, instrument: str | None = None) -> int:
        if instrument is not None:
            return self._per_symbol[instrument][key] if instrument in self._per_symbol else 0
        return sum(c[key] for c in self._per_symbol.values())

    def as_dict(self) -> dict[str, object]:
        total = {k: self.get(k) for k in COUNTER_KEYS}
        return {"total": total, "per_symbol": {s: dict(c) for s, c in sorted(self._per_symbol.items())}}
