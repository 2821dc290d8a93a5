"""What the node's first minute close would pay for first uses, paid at start instead.

The first scan after start was the slowest of a run (``benchmarks live-load``: 170-250 ms from the minute's last
kline to the entry order, against ~100 ms for the later scans). Most of the difference was Nautilus's message bus
meeting a topic for the first time: it then matches the topic against every subscription of the node (about
1,000 for 200 symbols: bars, quotes and marks for the strategy, the node's watchers), so the first bar of each of
200 symbols cost a scan of the whole subscription list, about 0.1 ms each, all in the burst before the first scan.
On Binance the quotes' and marks' topics are met within seconds of the connection, the bars' at the first
minute's close: exactly before the first scan.

The bus matches each new subscription against the topics it already knows. So here, right after the node is
built and before any actor or strategy subscribes, the topics of the universe's market data (the strategies'
bars, quotes and Binance mark prices, named as the data engine names them) are made known by publishing a
placeholder on each while nobody listens (the few subscriptions the built node already holds are set aside
meanwhile): the matching then happens as the strategy subscribes, at start. Nothing receives the placeholder.
"""

from typing import Any

from nautilus_trader.adapters.binance.futures.types import BinanceFuturesMarkPriceUpdate
from nautilus_trader.common.component import MessageBus, is_matching_py
from nautilus_trader.common.data_topics import TopicCache
from nautilus_trader.model.data import DataType
from nautilus_trader.model.identifiers import InstrumentId

from factors.inputs import bar_type_for
from nodes.live.market_streams import market_streams_of


class _Placeholder:
    """Published while nobody listens; of no type the bus sends on to external publishers."""


def market_data_topics(instrument_ids: list[InstrumentId], bar_spec: str) -> list[str]:
    """The data engine's topics for the bars (``bar_spec``, Binance's klines), quotes and Binance mark prices of
    ``instrument_ids``."""
    topics = TopicCache()
    out: list[str] = []
    for instrument_id in instrument_ids:
        mark = DataType(BinanceFuturesMarkPriceUpdate, metadata={"instrument_id": instrument_id})
        out += [
            topics.get_bars_topic(bar_type_for(instrument_id, bar_spec)),
            topics.get_quotes_topic(instrument_id),
            topics.get_custom_data_topic(mark, instrument_id),
        ]
    return out


def prime_topics(msgbus: MessageBus, topics: list[str]) -> list[str]:
    """Make ``topics`` known to the bus without delivering anything: a placeholder is published on each while
    nobody listens. The subscriptions that already match one (at build: the portfolio's ``data.quotes.*`` and
    ``data.bars.*EXTERNAL``) are taken off for it and put back after, in their order, at their priority, where the
    bus matches them against the topics it now knows. Returns the topics primed."""
    listening = [s for s in msgbus.subscriptions() if any(is_matching_py(t, s.topic) for t in topics)]
    for sub in listening:
        msgbus.unsubscribe(sub.topic, sub.handler)
    placeholder = _Placeholder()
    for topic in topics:
        msgbus.publish(topic, placeholder, external_pub=False)
    for sub in listening:
        msgbus.subscribe(sub.topic, sub.handler, priority=sub.priority)
    return topics


def strategies_universes(node: Any) -> list[tuple[list[InstrumentId], str | None]]:
    """Each strategy of a built node that names its universe (``instrument_ids``): the ids and its bars
    (``bar_spec``, None when it names none)."""
    universes = []
    for strategy in node.trader.strategies():
        ids = getattr(strategy.config, "instrument_ids", None)
        if ids:
            universes.append(([InstrumentId.from_str(str(i)) for i in ids], getattr(strategy.config, "bar_spec", None)))
    return universes


def prime_node(node: Any) -> list[str]:
    """After ``node.build()``, before it runs: the strategies' market-data topics made known to its bus, and each
    Binance data client's symbol lookups filled. Returns the topics primed."""
    universes = strategies_universes(node)
    instrument_ids = [i for ids, _ in universes for i in ids]
    for streams in market_streams_of(node):
        streams.prime(instrument_ids)
    topics = [t for ids, bar_spec in universes if bar_spec for t in market_data_topics(ids, bar_spec)]
    return prime_topics(node.kernel.msgbus, topics)
