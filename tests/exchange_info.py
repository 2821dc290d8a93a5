"""exchangeInfo answers for tests, built from the recorded Binance /fapi/v1/exchangeInfo in ../shared/data."""

import copy
import json
from pathlib import Path

RECORDED = Path("api_recordings/rest/http_futures_market_exchange_info.json")


def exchange_info(shared_data: Path, filters: dict[str, tuple[str, str, str]], server_time_ms: int) -> dict:
    """The recorded answer with one USDT perpetual per symbol: {symbol: (tickSize, stepSize, notional)}."""
    data = json.loads((shared_data / RECORDED).read_text())
    template = next(s for s in data["symbols"] if s["symbol"] == "BTCUSDT")
    symbols = []
    for symbol, (tick, step, notional) in filters.items():
        entry = copy.deepcopy(template)
        base = symbol.removesuffix("USDT")
        entry.update(symbol=symbol, pair=symbol, baseAsset=base)
        for item in entry["filters"]:
            if item["filterType"] == "PRICE_FILTER":
                item.update(tickSize=tick, minPrice=tick)
            elif item["filterType"] in ("LOT_SIZE", "MARKET_LOT_SIZE"):
                item.update(stepSize=step, minQty=step, maxQty="10000000")
            elif item["filterType"] == "MIN_NOTIONAL":
                item.update(notional=notional)
        symbols.append(entry)
    # keep the recorded quarterly contract: not a perpetual, it must be passed over without a word
    symbols += [s for s in data["symbols"] if s["contractType"] != "PERPETUAL"]
    return {**data, "serverTime": server_time_ms, "symbols": symbols}


def write_exchange_info(path: Path, shared_data: Path, filters: dict[str, tuple[str, str, str]], ms: int) -> Path:
    path.write_text(json.dumps(exchange_info(shared_data, filters, ms)))
    return path
