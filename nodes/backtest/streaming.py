"""Feed a one-off backtest its catalog data a chunk at a time, so each replayed point is freed once the engine has
passed it, instead of every point of the window being held until the run ends.

Each data config becomes one of the engine's data streams (``BacktestEngine.add_data_iterator``), registered in the
configs' order. The engine's iterator merges its streams by ``(ts_init, stream priority, position)``, and a stream's
priority is its registration order: points of equal ``ts_init`` come out config by config, each config's in its own
order, which is exactly the order of the stable sort over all configs' data that the one-shot load
(``engine.sort_data()``) replays. The chunks are those of the catalog's own query (the same backend session, only
cut into smaller pieces).
"""

from collections.abc import Callable, Iterator
from itertools import chain
from pathlib import Path

import numpy as np
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.node import BacktestNode, get_instrument_ids
from nautilus_trader.config import BacktestDataConfig
from nautilus_trader.core.data import Data
from nautilus_trader.core.nautilus_pyo3 import DataBackendSession, drop_cvec_pycapsule
from nautilus_trader.model.data import Bar, MarkPriceUpdate, QuoteTick, TradeTick, capsule_to_list
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.persistence.funcs import class_to_filename, urisafe_identifier

from catalog.inventory import series_timestamps

STREAM_CHUNK = 2_000  # points per chunk and stream: 16 bar streams hold about 10 MB of bars between them
# The types the catalog's query reads through its Rust backend session (the others go through pyarrow, whole).
_SESSION_TYPES = (Bar, MarkPriceUpdate, QuoteTick, TradeTick)


class StreamMismatchError(RuntimeError):
    """A stream's data did not span what the catalog's timestamps said it would: the run's window would be wrong."""


def data_chunks(config: BacktestDataConfig, chunk_size: int | None = None) -> Iterator[list[Data]]:
    """The points ``BacktestNode.load_data_config(config)`` returns, in its order, ``chunk_size`` (default
    ``STREAM_CHUNK``) at a time; other types than the backend session's come in one chunk. No chunk is empty."""
    catalog = BacktestNode.load_catalog(config)
    query = config.query
    if query["data_cls"] not in _SESSION_TYPES:
        data = BacktestNode.load_data_config(config).data
        if data:
            yield data
        return
    instrument_ids = get_instrument_ids(config)
    if instrument_ids and not catalog.instruments(instrument_ids=instrument_ids):
        return  # load_data_config returns nothing for instruments the catalog does not define
    session = catalog.backend_session(
        data_cls=query["data_cls"],
        identifiers=query["identifiers"],
        start=query["start"],
        end=query["end"],
        where=None,
        files=None,
        session=DataBackendSession(chunk_size=chunk_size or STREAM_CHUNK),
        filter_expr=query["filter_expr"],
        metadata=query["metadata"],
        optimize_file_loading=query["optimize_file_loading"],
    )
    for chunk in session.to_query_result():
        data = capsule_to_list(chunk)
        drop_cvec_pycapsule(chunk)  # the capsule's destructor does not free the vector (as in the catalog's query)
        if data:
            yield data
        del data  # not held while the engine replays the next chunk


def _window_stamps(config: BacktestDataConfig) -> np.ndarray:
    """The distinct ``ts_init`` of the config's series inside its start and end (inclusive, as the query filters)."""
    query = config.query
    identifier = urisafe_identifier(str(query["identifiers"][0]))
    stamps = series_timestamps(Path(config.catalog_path), class_to_filename(query["data_cls"]), identifier)
    low = 0 if config.start_time is None else int(np.searchsorted(stamps, config.start_time_nanos, side="left"))
    high = len(stamps) if config.end_time is None else int(np.searchsorted(stamps, config.end_time_nanos, "right"))
    return stamps[low:high]


def _ending_at(chunks: Iterator[list[Data]], last_ns: int, name: str) -> Iterator[list[Data]]:
    seen = None
    for chunk in chunks:
        seen = chunk[-1].ts_init
        yield chunk
        del chunk
    if seen != last_ns:
        raise StreamMismatchError(f"{name} ended at {seen}, the catalog's timestamps at {last_ns}")


def _calling(chunks: Iterator[list[Data]], between: Callable[[], None]) -> Iterator[list[Data]]:
    for chunk in chunks:
        between()
        yield chunk
        del chunk


def stream_data(
    engine: BacktestEngine,
    data_configs: list[BacktestDataConfig],
    between_chunks: Callable[[], None] | None = None,
) -> np.ndarray:
    """Register each config's data with the engine as a stream; the ``ts_init`` of all of it, sorted (each series'
    timestamps once: a duplicated timestamp within one series is listed once).

    Nothing is read beyond each stream's first chunk until the engine runs. The run needs the data's last
    timestamp before it starts (its end, to which the timers are flushed), so it comes from the catalog's
    timestamp index, and each stream checks on its last chunk that it really ended there. ``between_chunks`` is
    called each time the first stream is refilled (between two data points: nothing is being processed).
    """
    streams: list[tuple[Iterator[list[Data]], ClientId | None]] = []
    stamps: list[np.ndarray] = []
    for config in data_configs:
        chunks = data_chunks(config)
        first = next(chunks, None)
        if first is None:
            continue
        window = _window_stamps(config)
        name = f"{class_to_filename(config.data_type)} {config.query['identifiers'][0]}"
        if not len(window) or int(window[0]) != first[0].ts_init:
            raise StreamMismatchError(f"{name} starts at {first[0].ts_init}, the catalog's timestamps do not")
        client_id = ClientId(config.client_id) if config.client_id else None
        # add_data's checks (instrument known) and the bar types it records as replayed (so a strategy's
        # subscription is not turned into a catalog request): one point does it, then the data goes
        engine.add_data(first[:1], client_id=client_id, sort=False)
        streams.append((_ending_at(chain([first], chunks), int(window[-1]), name), client_id))
        stamps.append(window)
        del first
    engine.clear_data()  # drops those points, keeps what add_data recorded
    if streams and between_chunks is not None:
        streams[0] = (_calling(streams[0][0], between_chunks), streams[0][1])
    for number, (stream, client_id) in enumerate(streams):
        engine.add_data_iterator(f"catalog-{number}", stream, client_id)
    return np.sort(np.concatenate(stamps)) if stamps else np.empty(0, dtype=np.int64)
