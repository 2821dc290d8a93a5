"""``ats scan``: score every symbol of a universe from catalogued data as of a time, and print a ranked table.

The seed system's "single scan", on a Nautilus ``ParquetDataCatalog``: bars (``BinanceBar`` when the source
had taker-buy volume, else ``Bar``), funding rates, mark prices and open interest, whichever the catalog
holds, are replayed in time order through one ``FactorBook`` up to the scan time.
"""

from pathlib import Path

import pandas as pd
from nautilus_trader.adapters.binance.common.types import BinanceBar
from nautilus_trader.model.data import Bar, BarSpecification, CustomData, FundingRateUpdate, MarkPriceUpdate
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from factors.book import FactorBook
from factors.config import ALL_FACTORS, FACTOR_NAMES, FactorConfig
from factors.inputs import OpenInterest, bar_type_for
from factors.scoring import ScoreResult, rank, score
from strategies.config import AtsStrategyConfig

# The market of factor I, as the strategy has it.
BTC_ID = AtsStrategyConfig().btc_id.value
ETH_ID = AtsStrategyConfig().eth_id.value
DEFAULT_LOOKBACK_BARS = 300  # comfortably past every bar factor's warm-up with the default windows

# Replay order of events that share a timestamp: an OI poll or a bar first, then the mark and funding that are
# compared with that bar's close.
_OI, _BAR, _MARK, _FUNDING = 0, 1, 2, 3


def _series_exists(catalog: ParquetDataCatalog, cls: type, identifier: str) -> bool:
    return Path(catalog._make_path(data_cls=cls, identifier=identifier)).exists()


def load_events(
    catalog: ParquetDataCatalog,
    instrument_id: str,
    bar_spec: str,
    at: pd.Timestamp | None,
    lookback_ns: int,
    oi_lookback_ns: int,
    start_ns: int | None = None,
) -> tuple[list[tuple[int, int, object]], pd.Timestamp | None]:
    """(ts, kind, item) events of one instrument up to ``at`` (default: its last bar), and the time used.

    Bars start ``lookback_ns`` before that time, or at ``start_ns`` when it is earlier.
    """
    bar_type = str(bar_type_for(InstrumentId.from_str(instrument_id), bar_spec))
    bar_cls = next((c for c in (BinanceBar, Bar) if _series_exists(catalog, c, bar_type)), None)
    if bar_cls is None:
        return [], None
    end = at if at is not None else catalog.query_last_timestamp(bar_cls, bar_type)
    if end is None:
        return [], None
    end_ns = end.value
    start = end_ns - lookback_ns if start_ns is None else min(start_ns, end_ns - lookback_ns)
    bars = catalog.query(bar_cls, identifiers=[bar_type], start=start, end=end_ns)
    events: list[tuple[int, int, object]] = [(b.ts_event, _BAR, b) for b in bars]
    if not bars:
        return [], end
    first = bars[0].ts_event
    for cls, kind in ((MarkPriceUpdate, _MARK), (FundingRateUpdate, _FUNDING)):
        if _series_exists(catalog, cls, instrument_id):
            # funding is paid every 1-8 h: look back a day so the latest rate is known at the first bar
            rows = catalog.query(
                cls, identifiers=[instrument_id], start=first - 86_400_000_000_000, end=end_ns
            )
            events += [(r.ts_event, kind, r) for r in rows]
    if _series_exists(catalog, OpenInterest, instrument_id):
        rows = catalog.query(OpenInterest, identifiers=[instrument_id], start=end_ns - oi_lookback_ns, end=end_ns)
        events += [(r.ts_event, _OI, getattr(r, "data", r) if isinstance(r, CustomData) else r) for r in rows]
    return events, end


def run_scan(
    catalog_path: str,
    instrument_ids: list[str],
    at: pd.Timestamp | None,
    config: FactorConfig,
    bar_spec: str = "1-MINUTE",
    lookback_bars: int = DEFAULT_LOOKBACK_BARS,
) -> list[ScoreResult]:
    """Score ``instrument_ids`` as of ``at`` (UTC; default: each symbol's last catalogued bar), best first.

    BTC and ETH bars are loaded too when the catalog has them, as the market of factor I. A symbol without
    bars in the catalog is listed FLAT with a note instead of being dropped.
    """
    if not Path(catalog_path).is_dir():
        raise FileNotFoundError(
            f"catalog folder {catalog_path} not found; fill it first with `ats data ingest`"
        )
    if not instrument_ids:
        raise ValueError("run_scan: no instrument ids to scan")
    if at is not None:
        at = at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")
    interval_ns = int(BarSpecification.from_str(f"{bar_spec}-LAST").timedelta.total_seconds() * 1e9)
    lookback_ns = max(lookback_bars * interval_ns, config.oi_lookback_ns + interval_ns)
    oi_lookback_ns = config.oi_mean_ns + interval_ns
    catalog = ParquetDataCatalog(str(catalog_path))

    wanted = list(dict.fromkeys(instrument_ids))
    markets = (BTC_ID, ETH_ID)
    ids = wanted + [m for m in markets if m not in wanted]
    events: list[tuple[int, int, object]] = []
    loaded: list[str] = []
    earliest: int | None = None
    # Symbols first, then BTC and ETH over every symbol's window: without --at each symbol is scored at its
    # own last bar, and factor I needs the market's bars at those times (ETH's file may run on for days).
    for iid in sorted(ids, key=lambda i: i in markets):
        ev, end = load_events(catalog, iid, bar_spec, at, lookback_ns, oi_lookback_ns,
                              earliest if iid in markets else None)  # fmt: skip
        if ev:
            loaded.append(iid)
            events += ev
            if iid not in markets and end is not None:
                first = end.value - lookback_ns
                earliest = first if earliest is None else min(earliest, first)
    market = [InstrumentId.from_str(m) for m in (BTC_ID, ETH_ID) if m in loaded]
    book = FactorBook(
        config,
        [InstrumentId.from_str(i) for i in loaded] or [InstrumentId.from_str(ids[0])],
        market[0] if market else None,
        market[1] if len(market) > 1 else None,
    )
    events.sort(key=lambda e: (e[0], e[1]))
    for ts, kind, item in events:
        if kind == _BAR:
            book.handle_bar(item)  # type: ignore[arg-type]
        elif kind == _MARK:
            book.handle_mark_price(item.instrument_id, item.value.as_double(), ts)  # type: ignore[attr-defined]
        elif kind == _FUNDING:
            book.handle_funding_rate(item.instrument_id, float(str(item.rate)), ts)  # type: ignore[attr-defined]
        else:
            book.handle_open_interest(item.instrument_id, item.open_interest, ts)  # type: ignore[attr-defined]

    results = []
    for iid in wanted:
        if iid in loaded:
            results.append(book.score(InstrumentId.from_str(iid)))
        else:
            when = f" up to {at}" if at is not None else ""
            note = {"data": f"no {bar_spec} bars in the catalog for {iid}{when}"}
            results.append(score({}, config, instrument_id=iid, notes=note))
    return rank(results)


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{round(value):+d}"


def format_scan_table(results: list[ScoreResult]) -> str:
    """The ranked table: symbol, direction, strength, score, every factor (- = not available), bar time."""
    header = ["#", "symbol", "dir", "strength", "score", *ALL_FACTORS, "as of (UTC)"]
    rows = [header]
    for n, r in enumerate(results, 1):
        symbol = (r.instrument_id or "?").split("-PERP")[0]
        when = pd.Timestamp(r.ts_ns, unit="ns").strftime("%Y-%m-%d %H:%M") if r.ts_ns else "-"
        rows.append(
            [
                str(n),
                symbol,
                r.direction,
                f"{r.strength:.1f}",
                f"{r.score:+.1f}",
                *(_cell(r.values.get(k)) for k in ALL_FACTORS),
                when,
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            c.rjust(w) if i >= 3 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    lines.append("")
    lines.append(
        "factors: "
        + ", ".join(f"{k} {FACTOR_NAMES[k]}" for k in ALL_FACTORS)
        + "  (L, I: 0..100 quality gates; F: modulator; - = not available)"
    )
    missing: dict[str, set[str]] = {}
    for r in results:
        for key, why in r.notes.items():
            if key in ALL_FACTORS and not why.startswith("warming up"):
                missing.setdefault(f"{key}: {why}", set()).add((r.instrument_id or "?").split("-PERP")[0])
            elif key == "data":
                missing.setdefault(why, set())
    for why, symbols in sorted(missing.items()):
        who = (
            f" ({len(symbols)} symbols)"
            if len(symbols) > 3
            else (f" ({', '.join(sorted(symbols))})" if symbols else "")
        )
        lines.append(f"not available - {why}{who}")
    return "\n".join(lines)
