"""A Nautilus TradingNode with the unchanged Binance data and exec clients trades against the simulator.

It connects (the adapter's whole start-up REST sequence and the listen-key user stream), receives replayed
1-minute bars, buys at market, places a reduce-only stop (last price) and a reduce-only take-profit (mark
price) on the conditional-order endpoints, and sees both fill from the replayed data.
"""

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

from nautilus_trader.adapters.binance import (
    BinanceAccountType,
    BinanceDataClientConfig,
    BinanceExecClientConfig,
    BinanceLiveDataClientFactory,
    BinanceLiveExecClientFactory,
)
from nautilus_trader.adapters.binance.common.symbol import BinanceSymbol
from nautilus_trader.adapters.binance.common.types import BinanceBar
from nautilus_trader.adapters.binance.futures.enums import BinanceFuturesMarginType
from nautilus_trader.config import (
    InstrumentProviderConfig,
    LiveExecEngineConfig,
    LoggingConfig,
    StrategyConfig,
    TradingNodeConfig,
)
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.enums import OrderSide, OrderType, TriggerType
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import InstrumentId, TraderId
from nautilus_trader.trading.strategy import Strategy

from factors.inputs import bar_type_for
from simulator import BinanceSimulator
from tests.simulator_support import API_KEY, API_SECRET, btc_data, running_simulator

INSTRUMENT = "BTCUSDT-PERP.BINANCE"
BAR_TYPE = str(bar_type_for(InstrumentId.from_str(INSTRUMENT)))
WINDOW_START_MS = 1_746_374_280_000  # the 2025-05-04 15:58 UTC bar


class ProbeConfig(StrategyConfig, frozen=True):
    instrument_id: str
    bar_type: str
    quantity: str
    exit_offset: str  # fraction of the entry price to the stop and to the take-profit; "0": no exits
    enter_after_bars: int = 1


class Probe(Strategy):
    """Enter on the first bar; on the fill, a stop and a take-profit for half the position each."""

    def __init__(self, config: ProbeConfig) -> None:
        super().__init__(config)
        self.instrument_id = InstrumentId.from_str(config.instrument_id)
        self.bar_type = BarType.from_str(config.bar_type)
        self.bars: list[Bar] = []
        self.fills: list[OrderFilled] = []
        self.entry_id = None
        self.exit_ids: dict[str, object] = {}
        self.errors: list[str] = []

    def on_start(self) -> None:
        self.subscribe_bars(self.bar_type)

    def on_bar(self, bar: Bar) -> None:
        self.bars.append(bar)
        if self.entry_id is None and len(self.bars) >= self.config.enter_after_bars:
            instrument = self.cache.instrument(self.instrument_id)
            order = self.order_factory.market(
                self.instrument_id, OrderSide.BUY, instrument.make_qty(Decimal(self.config.quantity))
            )
            self.entry_id = order.client_order_id
            self.submit_order(order)

    def on_order_filled(self, event: OrderFilled) -> None:
        try:
            self.fills.append(event)
            if event.client_order_id == self.entry_id and Decimal(self.config.exit_offset) > 0:
                self._place_exits(Decimal(str(event.last_px)))
        except Exception as e:  # a live handler must not raise: it would stop the node
            self.errors.append(repr(e))

    def _place_exits(self, entry: Decimal) -> None:
        instrument = self.cache.instrument(self.instrument_id)
        offset = Decimal(self.config.exit_offset)
        half = instrument.make_qty(Decimal(self.config.quantity) / 2)
        stop = self.order_factory.stop_market(
            self.instrument_id,
            OrderSide.SELL,
            half,
            trigger_price=instrument.make_price(entry * (1 - offset)),
            trigger_type=TriggerType.LAST_PRICE,
            reduce_only=True,
        )
        take_profit = self.order_factory.market_if_touched(
            self.instrument_id,
            OrderSide.SELL,
            half,
            trigger_price=instrument.make_price(entry * (1 + offset)),
            trigger_type=TriggerType.MARK_PRICE,
            reduce_only=True,
        )
        self.exit_ids = {"stop": stop.client_order_id, "take_profit": take_profit.client_order_id}
        self.submit_order(stop)
        self.submit_order(take_profit)

    def filled(self, name: str) -> bool:
        wanted = self.exit_ids.get(name)
        return any(f.client_order_id == wanted for f in self.fills)


def _node_config(http_url: str, ws_url: str) -> TradingNodeConfig:
    provider = InstrumentProviderConfig(load_ids=frozenset([INSTRUMENT]))
    return TradingNodeConfig(
        trader_id=TraderId("SIMTEST-001"),
        logging=LoggingConfig(log_level="ERROR"),
        exec_engine=LiveExecEngineConfig(reconciliation=True, reconciliation_lookback_mins=60),
        data_clients={
            "BINANCE": BinanceDataClientConfig(
                api_key=API_KEY,
                api_secret=API_SECRET,
                account_type=BinanceAccountType.USDT_FUTURES,
                base_url_http=http_url,
                base_url_ws=ws_url,
                instrument_provider=provider,
            )
        },
        exec_clients={
            "BINANCE": BinanceExecClientConfig(
                api_key=API_KEY,
                api_secret=API_SECRET,
                account_type=BinanceAccountType.USDT_FUTURES,
                base_url_http=http_url,
                base_url_ws=ws_url,
                base_url_ws_stream=ws_url,
                instrument_provider=provider,
                use_position_ids=False,
                futures_leverages={BinanceSymbol("BTCUSDT"): 5},
                futures_margin_types={BinanceSymbol("BTCUSDT"): BinanceFuturesMarginType.ISOLATED},
            )
        },
        timeout_connection=30.0,
        timeout_reconciliation=10.0,
        timeout_portfolio=10.0,
        timeout_disconnection=5.0,
        timeout_post_stop=1.0,
    )


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextmanager
def running_node(sim: BinanceSimulator, probe: Strategy) -> Iterator[TradingNode]:
    """A TradingNode with Binance's clients pointed at ``sim``, running on its own thread."""
    # A fresh loop per node: a disposed node closes its loop, and the next node must not inherit it.
    node = TradingNode(config=_node_config(sim.http_url, sim.ws_url), loop=asyncio.new_event_loop())
    node.add_data_client_factory("BINANCE", BinanceLiveDataClientFactory)
    node.add_exec_client_factory("BINANCE", BinanceLiveExecClientFactory)
    node.trader.add_strategy(probe)
    node.build()
    thread = threading.Thread(target=node.run, daemon=True)
    thread.start()
    try:
        _wait(lambda: probe.is_running, 60, "the node to connect and start the strategy")
        yield node
    finally:
        loop = node.get_event_loop()
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(node.stop)
        thread.join(timeout=30)
        if loop is not None and not loop.is_running() and not loop.is_closed():
            # Tasks the node leaves pending would complain when the closed loop is collected.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        node.dispose()


def _probe(**overrides: str | int) -> Probe:
    settings: dict[str, str | int] = {"quantity": "0.010", "exit_offset": "0.0005"}
    settings.update(overrides)
    return Probe(ProbeConfig(instrument_id=INSTRUMENT, bar_type=BAR_TYPE, oms_type="NETTING", **settings))


def test_trading_node_trades_against_simulator(shared_data: Path) -> None:
    # A stretch of real BTCUSDT bars that moves more than 0.1% both ways within 45 minutes of the entry.
    data = btc_data(shared_data, bars=60, start_ms=WINDOW_START_MS)
    with running_simulator(data, bar_seconds=0.3) as sim:
        probe = _probe()
        with running_node(sim, probe):
            sim.play()
            _wait(lambda: len(probe.bars) >= 1, 30, "the first replayed bar")
            _wait(lambda: probe.filled("stop") and probe.filled("take_profit"), 60, "the stop and take-profit fills")

        assert not probe.errors
        assert all(isinstance(b, BinanceBar) for b in probe.bars)
        entry_fill = next(f for f in probe.fills if f.client_order_id == probe.entry_id)
        stop_fill = next(f for f in probe.fills if f.client_order_id == probe.exit_ids["stop"])
        tp_fill = next(f for f in probe.fills if f.client_order_id == probe.exit_ids["take_profit"])
        assert entry_fill.order_type == OrderType.MARKET
        assert stop_fill.last_px < entry_fill.last_px < tp_fill.last_px
        assert str(stop_fill.last_qty) == str(tp_fill.last_qty) == "0.005"

        status = sim.status()
        assert Decimal(status["positions"]["BTCUSDT"]["amount"]) == 0
        assert status["positions"]["BTCUSDT"]["leverage"] == 5
        assert sim.request_log.count("/fapi/v1/algoOrder", "POST") == 2
        assert sim.request_log.count("/fapi/v1/order", "POST") == 1
        assert sim.request_log.count("/fapi/v1/listenKey", "POST") == 1
        # Fees were charged on three fills: the wallet moved by PnL minus fees, not by nothing.
        assert Decimal(status["wallet_balance"]) != Decimal(10_000)


def test_node_recovers_from_dropped_streams_and_expired_listen_key(shared_data: Path) -> None:
    data = btc_data(shared_data, bars=80, start_ms=WINDOW_START_MS)
    with running_simulator(data, bar_seconds=0.25) as sim:
        probe = _probe(enter_after_bars=8, exit_offset="0")
        with running_node(sim, probe):
            sim.play()
            _wait(lambda: len(probe.bars) >= 1, 30, "the first replayed bar")
            assert sim.drop_connections() == 2  # the market-data connection and the user stream
            seen = len(probe.bars)
            _wait(lambda: len(probe.bars) >= seen + 2, 30, "bars after the adapter reconnected")
            assert sim.expire_listen_key() is not None
            _wait(lambda: sim.request_log.count("/fapi/v1/listenKey", "POST") >= 2, 30, "a new listen key")
            _wait(lambda: sim.status()["user_connections"] == 1, 30, "the user stream to reconnect")
            _wait(lambda: any(f.client_order_id == probe.entry_id for f in probe.fills), 30, "the entry fill")
        assert not probe.errors
        assert sim.status()["positions"]["BTCUSDT"]["amount"] == "0.010"


def test_restarted_node_reconciles_position_and_conditional_orders(shared_data: Path) -> None:
    data = btc_data(shared_data, bars=60, start_ms=WINDOW_START_MS)
    with running_simulator(data, bar_seconds=0.3) as sim:
        first = _probe(exit_offset="0.05")  # exits 5% away: they stay open
        with running_node(sim, first):
            sim.play()
            _wait(lambda: len(sim.exchange.algos) == 2, 30, "the stop and take-profit to reach the exchange")
            sim.pause()
        assert sim.status()["positions"]["BTCUSDT"]["amount"] == "0.010"

        second = _probe(enter_after_bars=10_000)  # never trades: it only reconciles
        with running_node(sim, second) as node:
            positions = node.cache.positions_open()
            orders = node.cache.orders_open()
        assert [(str(p.instrument_id), str(p.quantity), p.side.name) for p in positions] == [
            (INSTRUMENT, "0.010", "LONG")
        ]
        by_type = sorted((o.order_type.name, str(o.quantity), o.is_reduce_only) for o in orders)
        assert by_type == [("MARKET_IF_TOUCHED", "0.005", True), ("STOP_MARKET", "0.005", True)]
        assert sim.request_log.count("/fapi/v1/openAlgoOrders") >= 2


DROP_START_MS = 1_746_406_380_000  # 2025-05-05 00:53 UTC: BTCUSDT falls about 1% within 40 minutes


def test_liquidation_reaches_the_node(shared_data: Path) -> None:
    data = btc_data(shared_data, bars=40, start_ms=DROP_START_MS)
    with running_simulator(data, bar_seconds=0.25) as sim:
        probe = _probe(exit_offset="0")
        with running_node(sim, probe) as node:
            # 125x isolated: the maintenance margin (0.4%) is most of the margin, a 0.5% fall liquidates.
            sim.call(lambda: setattr(sim.exchange.positions["BTCUSDT"], "leverage", 125))
            sim.play()
            _wait(lambda: any(f.client_order_id == probe.entry_id for f in probe.fills), 30, "the entry fill")
            _wait(lambda: bool(sim.exchange.liquidations), 30, "the liquidation")

            def liquidation_booked() -> bool:
                orders = [o for o in node.cache.orders() if o.client_order_id.value.startswith("autoclose-")]
                return any(o.is_closed for o in orders)

            _wait(liquidation_booked, 30, "the node to see the liquidation fill")
            # Nautilus books the exchange's liquidation as an EXTERNAL order: with NETTING per strategy the
            # strategy's long stays open beside an EXTERNAL short of the same size; the net is flat.
            _wait(lambda: len(node.cache.positions_open()) == 2, 10, "the EXTERNAL position")
            net = sum(p.signed_qty for p in node.cache.positions_open())
            sides = sorted((p.id.value.rsplit("-", 1)[-1], p.side.name) for p in node.cache.positions_open())
        assert not probe.errors
        assert net == 0 and sides == [("000", "LONG"), ("EXTERNAL", "SHORT")]
        liquidation = sim.exchange.liquidations[0]
        assert liquidation.client_order_id.startswith("autoclose-") and liquidation.status == "FILLED"
        assert Decimal(sim.status()["positions"]["BTCUSDT"]["amount"]) == 0
