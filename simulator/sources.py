"""Where replay data comes from: Binance data files (read by ``catalog``) or a ``ParquetDataCatalog``.

Both give instruments, bars (``Bar`` or ``BinanceBar``) and funding events for ``SimulatorConfig``.
"""

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from nautilus_trader.model.data import Bar, FundingRateUpdate
from nautilus_trader.model.instruments import CryptoPerpetual

from catalog.convert import convert_file
from catalog.files import FileKind, identify
from catalog.instruments import binance_perpetual
from simulator.market import interval_of


@dataclass
class ReplayData:
    instruments: list[CryptoPerpetual] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    funding: dict[str, list[tuple[int, Decimal]]] = field(default_factory=dict)
    history: list[Bar] = field(default_factory=list)  # bars before the replay window, for GET klines

    def window(self, start_ms: int | None = None, limit: int | None = None, history: int = 0) -> "ReplayData":
        """The bars opened at ``start_ms`` or later, at most ``limit`` per symbol; ``history`` bars per symbol
        before ``start_ms`` are kept apart, to be served as past klines."""
        kept: list[Bar] = []
        before: dict[str, deque[Bar]] = {}
        counts: dict[str, int] = {}
        for bar in self.bars:
            if start_ms is not None and bar.ts_event // 1_000_000 - interval_of(bar)[1] < start_ms:
                if history > 0:
                    before.setdefault(bar.bar_type.instrument_id.value, deque(maxlen=history)).append(bar)
                continue
            key = bar.bar_type.instrument_id.value
            if limit is not None and counts.get(key, 0) >= limit:
                continue
            counts[key] = counts.get(key, 0) + 1
            kept.append(bar)
        past = [bar for bars in before.values() for bar in bars]
        return ReplayData(self.instruments, kept, self.funding, past)


def _funding_rows(updates: Sequence[FundingRateUpdate]) -> list[tuple[int, Decimal]]:
    return [(u.ts_event // 1_000_000, Decimal(str(u.rate))) for u in updates]


def from_files(paths: Sequence[Path]) -> ReplayData:
    """Kline / OHLCV files and funding files, named as in ``../shared/data/binance`` or by Binance Vision."""
    data = ReplayData()
    instruments: dict[str, CryptoPerpetual] = {}
    for path in paths:
        data_file = identify(Path(path))
        if data_file.kind not in (FileKind.KLINES, FileKind.OHLCV, FileKind.FUNDING):
            raise ValueError(f"{path}: the simulator replays klines and funding files, not {data_file.kind.value}")
        instrument = instruments.get(data_file.symbol) or binance_perpetual(data_file.symbol)
        instruments[data_file.symbol] = instrument
        objects = convert_file(data_file, instrument)
        if data_file.kind is FileKind.FUNDING:
            rows = _funding_rows([o for o in objects if isinstance(o, FundingRateUpdate)])
            data.funding.setdefault(data_file.symbol, []).extend(rows)
        else:
            data.bars.extend(o for o in objects if isinstance(o, Bar))
    data.instruments = list(instruments.values())
    return data


def from_catalog(path: Path, instrument_ids: Sequence[str], bar_spec: str = "1-MINUTE-LAST-EXTERNAL") -> ReplayData:
    """Bars of one spec (``BinanceBar`` where catalogued, else ``Bar``) and funding rates from a catalog."""
    from nautilus_trader.adapters.binance.common.types import BinanceBar
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    catalog = ParquetDataCatalog(str(path))
    instruments = [i for i in catalog.instruments() if i.id.value in set(instrument_ids)]
    if not instruments:
        raise ValueError(f"none of {list(instrument_ids)} in the catalog at {path}")
    data = ReplayData(instruments=list(instruments))
    for instrument in instruments:
        bar_type = f"{instrument.id}-{bar_spec}"
        bars: list[Bar] = []
        for cls in (BinanceBar, Bar):
            try:
                bars = [b for b in catalog.query(cls, identifiers=[bar_type]) if isinstance(b, Bar)]
            except Exception:  # a data class the catalog does not hold raises; try the next one
                bars = []
            if bars:
                break
        if not bars:
            raise ValueError(f"no {bar_type} bars in the catalog at {path}")
        data.bars.extend(bars)
        symbol = instrument.raw_symbol.value
        try:
            updates = catalog.query(FundingRateUpdate, identifiers=[instrument.id.value])
        except Exception:
            updates = []
        data.funding[symbol] = _funding_rows(updates)
    return data
