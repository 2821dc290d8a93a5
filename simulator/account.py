"""The simulated account: one USDT wallet, one-way positions per symbol, margin, funding, and its REST views
(``/fapi/v2/account``, ``balance``, ``positionRisk``, ``symbolConfig``, leverage and margin-type settings).

``Exchange`` (orders and matching) builds on it; the two only share state on the server's event loop.
"""

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from simulator import errors, params
from simulator.errors import BinanceApiError
from simulator.instruments import SymbolSpec
from simulator.marketstate import SymbolMarket
from simulator.orders import ZERO, Position

Emit = Callable[[dict[str, Any]], None]
Params = params.Params

MAX_LEVERAGE = 125


class Account:
    def __init__(
        self,
        specs: dict[str, SymbolSpec],
        markets: dict[str, SymbolMarket],
        balance: Decimal,
        clock_ms: Callable[[], int],
        emit: Emit,
        default_leverage: int = 20,
    ) -> None:
        self.specs = specs
        self.markets = markets
        self.wallet = balance
        self.clock_ms = clock_ms
        self.emit = emit
        self.dual_side = False
        self.positions = {s: Position(spec, leverage=default_leverage) for s, spec in specs.items()}
        self.funding_total = ZERO
        self.income: list[dict[str, Any]] = []  # GET /fapi/v1/income: realized PnL, commissions, funding

    # --- what the order book side tells the account (overridden by Exchange)

    def _open_order_margin(self) -> Decimal:
        """Initial margin held by open orders."""
        return ZERO

    def _symbols_with_open_orders(self) -> set[str]:
        return set()

    # --- lookups

    def _spec(self, p: Params) -> SymbolSpec:
        symbol = params.required(p, "symbol").upper()
        spec = self.specs.get(symbol)
        if spec is None:
            raise errors.invalid_symbol()
        return spec

    def _optional_spec(self, p: Params) -> SymbolSpec | None:
        return self._spec(p) if p.get("symbol") else None

    # --- account views

    def mark(self, symbol: str) -> Decimal:
        market = self.markets[symbol]
        return market.mark if market.mark is not None else ZERO

    def _cross_unrealized(self) -> Decimal:
        return sum((p.unrealized(self.mark(s)) for s, p in self.positions.items() if not p.is_isolated), ZERO)

    def _unrealized(self) -> Decimal:
        return sum((p.unrealized(self.mark(s)) for s, p in self.positions.items()), ZERO)

    def _isolated_wallets(self) -> Decimal:
        return sum((p.isolated_wallet for p in self.positions.values() if p.is_isolated), ZERO)

    def _position_margin(self) -> Decimal:
        return sum((p.initial_margin(self.mark(s)) for s, p in self.positions.items()), ZERO)

    def _maint_margin(self) -> Decimal:
        return sum((p.maint_margin(self.mark(s)) for s, p in self.positions.items()), ZERO)

    def available_balance(self) -> Decimal:
        cross_margin = sum(
            (p.initial_margin(self.mark(s)) for s, p in self.positions.items() if not p.is_isolated), ZERO
        )
        available = (
            self.wallet - self._isolated_wallets() + self._cross_unrealized() - cross_margin - self._open_order_margin()
        )
        return max(available, ZERO)

    def account_v2(self) -> dict[str, Any]:
        now = self.clock_ms()
        wallet = f"{self.wallet:.8f}"
        upnl = f"{self._unrealized():.8f}"
        margin_balance = f"{self.wallet + self._unrealized():.8f}"
        pos_im = self._position_margin()
        oo_im = self._open_order_margin()
        initial = f"{pos_im + oo_im:.8f}"
        maint = f"{self._maint_margin():.8f}"
        cross_wallet = f"{self.wallet - self._isolated_wallets():.8f}"
        cross_upnl = f"{self._cross_unrealized():.8f}"
        available = f"{self.available_balance():.8f}"
        return {
            "feeTier": 0,
            "canTrade": True,
            "canDeposit": True,
            "canWithdraw": True,
            "updateTime": 0,
            "multiAssetsMargin": False,
            "tradeGroupId": -1,
            "totalInitialMargin": initial,
            "totalMaintMargin": maint,
            "totalWalletBalance": wallet,
            "totalUnrealizedProfit": upnl,
            "totalMarginBalance": margin_balance,
            "totalPositionInitialMargin": f"{pos_im:.8f}",
            "totalOpenOrderInitialMargin": f"{oo_im:.8f}",
            "totalCrossWalletBalance": cross_wallet,
            "totalCrossUnPnl": cross_upnl,
            "availableBalance": available,
            "maxWithdrawAmount": available,
            "assets": [
                {
                    "asset": "USDT",
                    "walletBalance": wallet,
                    "unrealizedProfit": upnl,
                    "marginBalance": margin_balance,
                    "maintMargin": maint,
                    "initialMargin": initial,
                    "positionInitialMargin": f"{pos_im:.8f}",
                    "openOrderInitialMargin": f"{oo_im:.8f}",
                    "crossWalletBalance": cross_wallet,
                    "crossUnPnl": cross_upnl,
                    "availableBalance": available,
                    "maxWithdrawAmount": available,
                    "marginAvailable": True,
                    "updateTime": now,
                }
            ],
            "positions": [
                {
                    "symbol": s,
                    "initialMargin": f"{p.initial_margin(self.mark(s)):.8f}",
                    "maintMargin": f"{p.maint_margin(self.mark(s)):.8f}",
                    "unrealizedProfit": f"{p.unrealized(self.mark(s)):.8f}",
                    "positionInitialMargin": f"{p.initial_margin(self.mark(s)):.8f}",
                    "openOrderInitialMargin": "0",
                    "leverage": str(p.leverage),
                    "isolated": p.is_isolated,
                    "entryPrice": f"{p.entry_price:.8f}",
                    "maxNotional": p.max_notional(),
                    "bidNotional": "0",
                    "askNotional": "0",
                    "positionSide": "BOTH",
                    "positionAmt": p.spec.fmt_qty(p.amount),
                    "updateTime": p.update_time,
                }
                for s, p in self.positions.items()
            ],
        }

    def balance_v2(self) -> list[dict[str, Any]]:
        available = f"{self.available_balance():.8f}"
        return [
            {
                "accountAlias": "SimTfXq",
                "asset": "USDT",
                "balance": f"{self.wallet:.8f}",
                "crossWalletBalance": f"{self.wallet - self._isolated_wallets():.8f}",
                "crossUnPnl": f"{self._cross_unrealized():.8f}",
                "availableBalance": available,
                "maxWithdrawAmount": available,
                "marginAvailable": True,
                "updateTime": self.clock_ms(),
            }
        ]

    def position_risk(self, p: Params, only_active: bool = True) -> list[dict[str, Any]]:
        """v3 lists only symbols with a position or open orders (``only_active``); v2 lists every symbol."""
        spec = self._optional_spec(p)
        active = self._symbols_with_open_orders()
        rows = []
        for symbol, pos in self.positions.items():
            if spec is not None and symbol != spec.symbol:
                continue
            if only_active and pos.amount == 0 and symbol not in active:
                continue
            rows.append(pos.to_risk(self.mark(symbol)))
        return rows

    # --- settings

    def set_leverage(self, p: Params) -> dict[str, Any]:
        spec = self._spec(p)
        leverage = params.integer(p, "leverage")
        if leverage is None:
            raise errors.mandatory_param("leverage")
        if not 1 <= leverage <= MAX_LEVERAGE:
            raise errors.invalid_leverage()
        pos = self.positions[spec.symbol]
        pos.leverage = leverage
        return {"leverage": leverage, "maxNotionalValue": pos.max_notional(), "symbol": spec.symbol}

    def set_margin_type(self, p: Params) -> dict[str, Any]:
        spec = self._spec(p)
        wanted = params.one_of(p, "marginType", frozenset({"ISOLATED", "CROSSED"}))
        pos = self.positions[spec.symbol]
        if pos.margin_type == wanted:
            raise errors.no_need_to_change_margin_type()
        if pos.amount != 0:
            raise errors.margin_type_with_position()
        if spec.symbol in self._symbols_with_open_orders():
            raise BinanceApiError(400, -4047, "Margin type cannot be changed if there exists open orders.")
        pos.margin_type = wanted
        return {"code": 200, "msg": "success"}

    def symbol_config(self, p: Params) -> list[dict[str, Any]]:
        spec = self._optional_spec(p)
        return [
            {
                "symbol": s,
                "marginType": pos.margin_type,
                "isAutoAddMargin": False,
                "leverage": pos.leverage,
                "maxNotionalValue": pos.max_notional(),
            }
            for s, pos in self.positions.items()
            if spec is None or s == spec.symbol
        ]

    def set_dual_side(self, p: Params) -> dict[str, Any]:
        wanted = params.boolean(p, "dualSidePosition")
        if wanted == self.dual_side:
            raise errors.no_need_to_change_position_side()
        if wanted:
            # Hedge mode is not simulated: say so plainly rather than pretend.
            raise BinanceApiError(400, -4067, "Hedge mode (dualSidePosition) is not supported by the simulator.")
        self.dual_side = wanted
        return {"code": 200, "msg": "success"}

    # --- checks shared by orders and algo orders

    def _check_position_side(self, p: Params) -> None:
        side = p.get("positionSide", "BOTH")
        if side != "BOTH":
            raise errors.position_side_not_match()

    def _reduces(self, symbol: str, side: str) -> Decimal:
        """How much of the position an order on ``side`` can reduce (zero if it would add to it)."""
        amount = self.positions[symbol].amount
        if amount > 0 and side == "SELL":
            return amount
        if amount < 0 and side == "BUY":
            return -amount
        return ZERO

    def _check_margin(self, spec: SymbolSpec, side: str, qty: Decimal, price: Decimal) -> None:
        increase = max(ZERO, qty - self._reduces(spec.symbol, side))
        if increase == 0:
            return
        leverage = self.positions[spec.symbol].leverage
        required = increase * price / leverage + qty * price * spec.taker_fee
        if required > self.available_balance():
            raise errors.margin_insufficient()

    def _book_fill(self, symbol: str, side: str, price: Decimal, qty: Decimal, fee: Decimal, ts: int) -> Decimal:
        """Apply a fill to the position and the wallet; returns the realized PnL (the fee is paid apart)."""
        pos = self.positions[symbol]
        signed = qty if side == "BUY" else -qty
        realized = ZERO
        old = pos.amount
        if old == 0 or (old > 0) == (signed > 0):
            new_amount = old + signed
            pos.entry_price = (abs(old) * pos.entry_price + qty * price) / abs(new_amount)
            if pos.is_isolated:
                pos.isolated_wallet += qty * price / pos.leverage
            pos.amount = new_amount
        else:
            closed = min(qty, abs(old))
            realized = closed * (price - pos.entry_price) * (1 if old > 0 else -1)
            if pos.is_isolated:
                pos.isolated_wallet -= pos.isolated_wallet * closed / abs(old)
            new_amount = old + signed
            if new_amount == 0:
                pos.entry_price = ZERO
            elif (new_amount > 0) != (old > 0):
                pos.entry_price = price
                if pos.is_isolated:
                    pos.isolated_wallet += abs(new_amount) * price / pos.leverage
            pos.amount = new_amount
        pos.realized += realized
        pos.fees_paid += fee
        pos.update_time = ts
        self.wallet += realized - fee
        if realized:
            self._record_income(symbol, "REALIZED_PNL", realized, ts)
        if fee:
            self._record_income(symbol, "COMMISSION", -fee, ts)
        return realized

    def _record_income(self, symbol: str, kind: str, amount: Decimal, ts: int) -> None:
        tran_id = 9_000_000_000 + len(self.income)
        self.income.append(
            {
                "symbol": symbol,
                "incomeType": kind,
                "income": f"{amount:.8f}",
                "asset": "USDT",
                "info": kind,
                "time": ts,
                "tranId": tran_id,
                "tradeId": "",
            }
        )

    def income_history(self, p: Params) -> list[dict[str, Any]]:
        """``GET /fapi/v1/income``: oldest first within ``startTime``..``endTime``, at most ``limit`` (100, max
        1000) rows; without a window, the last seven days."""
        end = params.integer(p, "endTime", 2**62) or 2**62
        start = params.integer(p, "startTime", 0) or 0
        if not params.integer(p, "startTime") and not params.integer(p, "endTime"):
            start = self.clock_ms() - 7 * 86_400_000
        limit = min(params.integer(p, "limit", 100) or 100, 1000)
        kind, symbol = p.get("incomeType"), p.get("symbol")
        rows = [
            r
            for r in self.income
            if start <= r["time"] <= end
            and (not kind or r["incomeType"] == kind)
            and (not symbol or r["symbol"] == symbol)
        ]
        return rows[:limit]

    def _account_update(self, reason: str, symbols: list[str], ts: int, balance_change: Decimal = ZERO) -> None:
        self.emit(
            {
                "e": "ACCOUNT_UPDATE",
                "T": ts,
                "E": ts,
                "a": {
                    "m": reason,
                    "B": [
                        {
                            "a": "USDT",
                            "wb": f"{self.wallet:.8f}",
                            "cw": f"{self.wallet - self._isolated_wallets():.8f}",
                            "bc": f"{balance_change:.8f}",
                        }
                    ],
                    "P": [self.positions[s].to_event_row(self.mark(s)) for s in symbols],
                },
            }
        )

    def settle_funding(self, symbol: str, rate: Decimal, ts: int) -> Decimal:
        """Pay or receive funding on an open position: longs pay shorts when the rate is positive."""
        pos = self.positions[symbol]
        if pos.amount == 0:
            return ZERO
        payment = -pos.amount * self.mark(symbol) * rate
        self.wallet += payment
        self.funding_total += payment
        self._record_income(symbol, "FUNDING_FEE", payment, ts)
        self._account_update("FUNDING_FEE", [symbol], ts, balance_change=payment)
        return payment
