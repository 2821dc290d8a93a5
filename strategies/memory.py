"""What a live strategy remembers of its open trades across a restart: a small JSON file, written atomically.

The exchange keeps the positions and their exits, but not which of them were the strategy's trades, their
entry strength and exit levels, or whether TP1 had filled. On restart the node reads this file: a remembered
trade still open is adopted with what it was; one that is gone closed while the node was down, and is booked
from the exchange's fills (``strategies/downtime.py``). The file is rewritten when a trade opens or ends and on
stop; a crash loses at most the change being written (the exchange is then the only source, as without a file).
"""

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nautilus_trader.model.identifiers import InstrumentId

from strategies.exits import ExitLevels, FactorInputs
from strategies.trade import Trade

VERSION = 1


@dataclass(frozen=True)
class TradeMemo:
    instrument: str
    direction: str
    entry: float
    quantity: float
    opened_ns: int
    tp1_done: bool
    strength: float
    leverage: int
    funding: float
    levels: dict[str, Any]  # ExitLevels as a dict

    @classmethod
    def of(cls, trade: Trade) -> "TradeMemo":
        levels = trade.levels or trade.planned
        return cls(
            instrument=str(trade.instrument_id),
            direction=trade.direction,
            entry=trade.entry,
            quantity=float(trade.quantity),
            opened_ns=trade.opened_ns,
            tp1_done=trade.tp1_done,
            strength=trade.strength,
            leverage=trade.leverage,
            funding=trade.funding,
            levels=asdict(levels),
        )

    @property
    def instrument_id(self) -> InstrumentId:
        return InstrumentId.from_str(self.instrument)

    def exit_levels(self) -> ExitLevels:
        return ExitLevels(**{**self.levels, "reasons": tuple(self.levels.get("reasons", ()))})

    def factors(self) -> FactorInputs:
        return FactorInputs(strength=self.strength)


def encode(memos: list[TradeMemo], saved_ns: int) -> str:
    return json.dumps({"version": VERSION, "saved_ns": saved_ns, "trades": [asdict(m) for m in memos]}, sort_keys=True)


def decode(text: str) -> tuple[int, list[TradeMemo]]:
    """(saved_ns, trades) of a memory file's text; ``ValueError`` when it is not one."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("trades"), list):
        raise ValueError("not an ats trade memory (version 1)")
    return int(data.get("saved_ns", 0)), [TradeMemo(**row) for row in data["trades"]]


def load(path: str | Path) -> tuple[int, list[TradeMemo]]:
    """The remembered trades; none when there is no file yet."""
    path = Path(path)
    if not path.exists():
        return 0, []
    try:
        return decode(path.read_text())
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"{path}: unreadable trade memory ({e}); move it away to start without it") from None


class TradeMemory:
    """The file of one strategy; ``save`` writes only when the trades changed."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._last = ""

    def save(self, trades: list[Trade], now_ns: int) -> None:
        memos = sorted((TradeMemo.of(t) for t in trades), key=lambda m: m.instrument)
        body = json.dumps([asdict(m) for m in memos], sort_keys=True)
        if body == self._last:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w") as f:
            f.write(encode(memos, now_ns))
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path)
        self._last = body
