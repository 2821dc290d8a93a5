"""The positions, fills, orders and account reports of a backtest, equal to Nautilus's
``Trader.generate_*_report`` frames (``tests/test_backtest_speed.py`` compares them), built faster after a run of
tens of thousands of trades; and the same reports as typed Arrow tables for the report's Parquet files.

- Times become a datetime column in one vectorised call instead of one ``pd.Timestamp`` per cell.
- Every account state carries a copy of every instrument's margin; a run of 16 symbols has about 50,000 states,
  so 800,000 margins. Most of them repeat (an instrument's margin changes only when it trades): each distinct
  margin is turned into its dict (and, for the CSV, its text) once and shared by every row that holds it.
"""

import json
from array import array
from collections.abc import Callable, Iterator
from operator import attrgetter, eq, index, itemgetter, methodcaller
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytz
from nautilus_trader.core.datetime import unix_nanos_to_dt
from nautilus_trader.model.functions import (
    contingency_type_to_str,
    liquidity_side_to_str,
    order_side_to_str,
    order_status_to_str,
    order_type_to_str,
    position_side_to_str,
    time_in_force_to_str,
    trigger_type_to_str,
)
from nautilus_trader.model.objects import FIXED_PRECISION
from nautilus_trader.model.orders import Order


def _utc(ns: Any) -> pd.DatetimeIndex:
    """Epoch ns (None as 0) -> UTC times, as Nautilus's ``unix_nanos_to_dt`` gives them one by one."""
    values = np.fromiter((v or 0 for v in ns), dtype=np.int64, count=len(ns))
    return pd.DatetimeIndex(values.view("datetime64[ns]")).tz_localize(pytz.utc)


def orders_frame(orders: list[Order]) -> pd.DataFrame:
    """``Trader.generate_orders_report``: every order, by client order id."""
    if not orders:
        return pd.DataFrame()
    return pd.DataFrame(data=[o.to_dict() for o in orders]).set_index("client_order_id").sort_index()


def order_fills_frame(orders: list[Order]) -> pd.DataFrame:
    """``Trader.generate_order_fills_report``: the orders with a fill, ``ts_last``/``ts_init`` as UTC times."""
    filled = [o.to_dict() for o in orders if o.filled_qty > 0]
    if not filled:
        return pd.DataFrame()
    report = pd.DataFrame(data=filled).set_index("client_order_id").sort_index()
    report["ts_last"] = _utc(report["ts_last"].tolist())
    report["ts_init"] = _utc(report["ts_init"].tolist())
    return report


def account_frame(states: list[Any]) -> pd.DataFrame:
    """``Trader.generate_account_report``: one row per balance per account state (``account.events``), by event
    time. The ``margins`` cells are lists of dicts as Nautilus's are; one dict object per distinct margin, shared."""
    if not states:
        return pd.DataFrame()
    shared: dict[tuple, dict[str, Any]] = {}
    rows = []
    for state in states:
        margins = []
        for m in state.margins:
            key = (m.instrument_id, m.currency.code, m.initial.raw, m.maintenance.raw)
            found = shared.get(key)
            if found is None:
                found = shared[key] = m.to_dict()
            margins.append(found)
        common = {
            "type": "AccountState",
            "account_id": state.account_id.value,
            "account_type": state.account_type.name,
            "base_currency": state.base_currency.code if state.base_currency else None,
            "margins": margins,
            "reported": state.is_reported,
            "info": state.info,
            "ts_event": state.ts_event,
        }
        for balance in state.balances:
            rows.append({**balance.to_dict(), **common})
    if not rows:
        return pd.DataFrame()
    report = pd.DataFrame(data=rows).set_index("ts_event").sort_index()
    report.index = _utc(report.index.tolist())
    del report["type"]
    return report


def utc_text(ns: np.ndarray) -> np.ndarray:
    """Epoch ns as pandas writes a UTC datetime column to CSV: ``2025-05-09 00:01:00+00:00``, with a fraction of
    the column's finest resolution (3, 6 or 9 digits) on every cell when any time has one; in numpy calls
    instead of one ``Timestamp`` per cell."""
    ns = np.asarray(ns, dtype=np.int64)
    fraction = ns % 1_000_000_000  # floored, as the seconds are
    seconds = (ns - fraction).astype("datetime64[ns]").astype("datetime64[s]")
    text = np.char.replace(np.datetime_as_string(seconds, unit="s"), "T", " ")
    if (fraction % 1_000).any():
        digits, unit = 9, 1
    elif (fraction % 1_000_000).any():
        digits, unit = 6, 1_000
    elif fraction.any():
        digits, unit = 3, 1_000_000
    else:
        return np.char.add(text, "+00:00")
    text = np.char.add(np.char.add(text, "."), np.char.zfill((fraction // unit).astype(str), digits))
    return np.char.add(text, "+00:00")


def write_csv(frame: pd.DataFrame, path: Path, index: bool = True) -> None:
    """``frame.to_csv(path, index=index)``, byte for byte, faster: each column turned into its cells' text in one pass
    (``csv_cells``), the rows joined in C; a frame with a column of another kind goes through pandas, with its UTC
    datetime columns turned into text first (``utc_text``: pandas formats them one ``Timestamp`` at a time)."""
    if frame.columns.has_duplicates or frame.index.nlevels > 1 or frame.columns.nlevels > 1 or not frame.shape[1]:
        frame.to_csv(path, index=index)
        return
    cells = [csv_cells(frame.index.to_series())] if index else []
    cells += [csv_cells(frame.iloc[:, i]) for i in range(frame.shape[1])]
    if any(column is None for column in cells):
        _pandas_csv(frame, path, index)
        return
    header = ["" if frame.index.name is None else str(frame.index.name)] if index else []
    write_cells(path, header + [str(name) for name in frame.columns], cells)


def write_cells(path: Path, names: list[str], cells: list[list[str]]) -> None:
    """A CSV of columns already turned into their cells' text: the header (quoted where needed), then the rows
    joined in C."""
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(",".join(map(_quoted, names)) + "\n")
        if cells and cells[0]:
            out.write("\n".join(map(",".join, zip(*cells, strict=True))) + "\n")


CSV_SPECIAL = (",", '"', "\r", "\n")  # a cell holding one of these is quoted (the csv module's QUOTE_MINIMAL)


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in CSV_SPECIAL) else text


def csv_cells(column: pd.Series) -> list[str] | None:
    """The text pandas' ``to_csv`` writes for each cell of a column (missing values empty, quoted where the csv
    module would quote), or None for a kind of column this does not know."""
    dtype = column.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) and str(dtype.tz) == "UTC" and dtype.unit == "ns":
        if not len(column):
            return []
        missing = column.isna().to_numpy()
        texts = np.full(len(column), "", dtype=object)
        texts[~missing] = utc_text(column.array.asi8[~missing])
        return texts.tolist()
    if pd.api.types.is_float_dtype(dtype):  # the shortest repr, as numpy's; NaN empty
        return ["" if v != v else repr(v) for v in column.to_numpy(dtype=np.float64).tolist()]
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_integer_dtype(dtype):
        return None if column.hasnans else list(map(str, column.tolist()))
    if isinstance(dtype, pd.StringDtype):
        texts = column.to_numpy(dtype=object, na_value="").tolist()
    elif dtype == np.dtype(object):
        texts = []
        for v in column.tolist():
            if v is None or v is pd.NA or (type(v) is float and v != v):
                texts.append("")
            elif type(v) is str:
                texts.append(v)
            elif type(v) in (list, dict, int, float, bool):
                texts.append(str(v))
            else:  # a Timestamp or another object pandas may write its own way
                return None
    else:
        return None
    return quoted_cells(texts)


def quoted_cells(texts: list[str]) -> list[str]:
    """Text cells as the csv module writes them: every cell quoted where it must be (one scan when none must)."""
    joined = "".join(texts)
    return [_quoted(t) for t in texts] if any(c in joined for c in CSV_SPECIAL) else texts


def record_columns(records: list[dict[str, Any]]) -> dict[str, list[Any]] | None:
    """The records as columns when every record has the same keys in the same order (a frame made from them has
    those columns in that order), else None."""
    if not records:
        return None
    keys = list(records[0])
    if any(list(record) != keys for record in records):
        return None
    return {key: list(map(itemgetter(key), records)) for key in keys}


NONE = type(None)
NUMBERS = frozenset({int, float, NONE})  # values pandas puts in one float64 column, unless all ints or all None
INT64 = 2**63


def value_cells(values: list[Any]) -> list[str] | None:
    """The text pandas' ``to_csv`` writes for a column a frame builds from these Python values, for the kinds whose
    column it is sure of: all text or all lists (quoted where needed), all ints, all bools, numbers (floats, or
    ints with floats or None: a float column, None empty); else None."""
    kinds = set(map(type, values))
    if kinds == {float}:
        return ["" if v != v else repr(v) for v in values]
    if kinds in ({int}, {bool}):
        return list(map(str, values))
    if kinds <= NUMBERS and kinds != {NONE} and all(-INT64 <= v < INT64 for v in values if type(v) is int):
        return ["" if v is None or v != v else repr(float(v)) for v in values]  # a float column: None is NaN
    if kinds in ({str}, {list}):
        return quoted_cells(values if kinds == {str} else list(map(str, values)))
    return None


def _pandas_csv(frame: pd.DataFrame, path: Path, index: bool) -> None:
    times = [
        name
        for name, dtype in frame.dtypes.items()
        if isinstance(dtype, pd.DatetimeTZDtype) and str(dtype.tz) == "UTC" and dtype.unit == "ns"
    ]
    if not times:
        frame.to_csv(path, index=index)
        return
    text = frame.copy(deep=False)
    for name in times:
        missing = frame[name].isna().to_numpy()
        cells = np.full(len(frame), "", dtype=object)  # a missing time is written as an empty cell
        cells[~missing] = utc_text(frame[name].array.asi8[~missing])
        text[name] = cells
    text.to_csv(path, index=index)


def write_account_csv(frame: pd.DataFrame, path: Path) -> None:
    """``frame.to_csv(path)``, byte for byte, faster: the csv writer gets a short stand-in for the ``margins``
    cells (16 symbols: 2 kB of text per row, 120 MB in all) and each distinct margin is written to text once."""
    if "margins" not in frame or frame.empty:
        frame.to_csv(path)
        return
    texts: dict[int, str] = {}

    def cell(margins: list[dict[str, Any]]) -> str:
        parts = []
        for margin in margins:
            found = texts.get(id(margin))
            if found is None:
                found = texts[id(margin)] = repr(margin)
            parts.append(found)
        text = f"[{', '.join(parts)}]"
        if any(c in text for c in ',"\r\n'):  # quoted as the csv module's QUOTE_MINIMAL does
            text = '"' + text.replace('"', '""') + '"'
        return text

    stand_in = "MARGINS_CELL"
    lines = frame.assign(margins=stand_in).to_csv().split("\n")
    if any(stand_in in line for line in lines[:1]) or len(lines) != len(frame) + 2:
        frame.to_csv(path)  # a column name or a multi-line cell: the plain writer
        return
    with open(path, "w", encoding="utf-8", newline="") as out:  # row by row: the 120 MB are never held at once
        out.write(lines[0])
        for line, margins in zip(lines[1:-1], frame["margins"], strict=True):
            out.write("\n")
            out.write(line.replace(stand_in, cell(margins), 1))
        out.write("\n")
        out.write(lines[-1])


# The Parquet tables (fills.parquet, orders.parquet, account.parquet) hold the same rows and columns as the
# reports above, typed: times as UTC timestamps, decimal text (quantities, prices, money) as float64, lists as
# lists, free-form dicts (``info``, ``exec_algorithm_params``) as JSON text. The id the reports index by is the
# first column. They are built from Nautilus's objects into Arrow columns, without a pandas frame in between.
DECIMAL_COLUMNS = frozenset(
    {
        "quantity",
        "filled_qty",
        "leaves_qty",
        "display_qty",
        "price",
        "trigger_price",
        "activation_price",
        "limit_offset",
        "trailing_offset",
        "avg_px",
        "slippage",
        "total",
        "locked",
        "free",
        "initial",
        "maintenance",
    }
)
TIME_COLUMNS = frozenset({"ts_init", "ts_last", "ts_event"})
UTC_NS = pa.timestamp("ns", tz="UTC")


def _column(name: str, values: list[Any]) -> pa.Array:
    if name in TIME_COLUMNS:
        return pa.array(values, type=pa.int64()).cast(UTC_NS)
    try:
        column = pa.array(values)
    except (pa.ArrowException, TypeError, ValueError):  # mixed kinds of cells: their text
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())
    if pa.types.is_struct(column.type):  # a free-form dict per cell: JSON text, whatever its keys
        return pa.array([None if v is None else json.dumps(v) for v in values], type=pa.string())
    if name in DECIMAL_COLUMNS and pa.types.is_string(column.type):
        return column.cast(pa.float64())
    return column


def _joined(parts: list[pa.Table], columns: dict[str, None], index: str) -> pa.Table:
    """The parts as one table: every column (nulls where a part lacked it), ``index`` first, sorted by it."""
    if not parts:
        return pa.table({})
    names = [index, *(c for c in columns if c != index)]
    whole = []
    for part in parts:
        missing = {name: pa.nulls(len(part)) for name in names if name not in part.column_names}
        for name, nulls in missing.items():
            part = part.append_column(name, nulls)
        whole.append(part.select(names))
    return pa.concat_tables(whole, promote_options="default").sort_by(index)


# The reports' cells a column at a time. ``to_dict()`` makes every cell of an object in compiled code, 18 us an
# order and 22 us a position, most of it decimal text made through ``Decimal`` (a quantity 2.4 us, the commissions
# 4.6 us); reading the attributes a column at a time (``attrgetter``, in C) and making the text from the raw
# integers is about three times faster. Each column's getter is written after Nautilus 1.231's ``to_dict`` of
# the same key; the keys and their order are still taken from one real ``to_dict()`` per kind of object, and an
# object with a key no getter knows is read through ``to_dict()`` as before, so a new Nautilus field is never lost
# (``tests/test_backtest_speed.py`` compares the tables with Nautilus's own reports).
Getter = Callable[[list[Any]], list[Any]]


MONEY_SCALE = 10**FIXED_PRECISION  # a Money's raw integer per unit
UNITS = [10 ** (FIXED_PRECISION - p) for p in range(FIXED_PRECISION + 1)]  # raw per last digit, by precision
EXACT_BELOW = [10**15 * unit for unit in UNITS]  # raws of fewer than 16 digits at the precision
FORMATS = [f".{p}f" for p in range(FIXED_PRECISION + 1)]


def decimal_text(raw: int, precision: int) -> str | None:
    """``f"{Decimal(raw) / 10**FIXED_PRECISION:.{precision}f}"`` (the text of a Quantity, Price or Money amount) when
    the raw has no digits beyond ``precision`` and fewer than 16 at it, else None. The float nearest the exact value
    (``raw / 10**FIXED_PRECISION`` of two integers is correctly rounded) lies within 2**-53 of it, less than half a
    last digit for 15 digits, so it prints back as exactly those digits, without a Decimal."""
    if raw % UNITS[precision] or not -EXACT_BELOW[precision] < raw < EXACT_BELOW[precision]:
        return None
    return format(raw / MONEY_SCALE, FORMATS[precision])


def money_text(money: Any) -> str:
    """``str(money)``: the amount at its currency's precision, then the currency's code."""
    currency = money.currency
    text = decimal_text(money.raw, currency.precision)
    return str(money) if text is None else f"{text} {currency.code}"


def quantity_text(value: Any) -> str:
    """``str(value)`` of a Quantity or Price."""
    text = decimal_text(value.raw, value.precision)
    return str(value) if text is None else text


def decimal_float(value: Any) -> float:
    """``float(str(value))`` of a Quantity or Price: ``raw / 10**FIXED_PRECISION`` (correctly rounded, so the float
    nearest the exact text) when the raw has no digits beyond the value's precision, else the text's float."""
    raw = value.raw
    return raw / MONEY_SCALE if raw % UNITS[value.precision] == 0 else float(str(value))


def _values(name: str) -> Getter:
    get = attrgetter(name)
    return lambda objects: list(map(get, objects))


def _identifiers(name: str) -> Getter:
    """An identifier's text, None where there is none."""
    get, text = attrgetter(name), attrgetter(f"{name}.value")

    def column(objects: list[Any]) -> list[str | None]:
        try:
            return list(map(text, objects))  # in C, while every object has one
        except AttributeError:
            return [None if v is None else v.value for v in map(get, objects)]

    return column


def _enum_names(name: str, to_str: Callable[[Any], str]) -> Getter:
    """An enum's name, made once per value (the values as plain ints: an Enum hashes in Python)."""
    get = attrgetter(name)

    def column(objects: list[Any]) -> list[str]:
        values = list(map(index, map(get, objects)))
        names = {value: to_str(value) for value in set(values)}
        return list(map(names.__getitem__, values))

    return column


def _positive(name: str) -> Getter:
    """The value where it is above zero, else None (Nautilus's "not set")."""
    get = attrgetter(name)
    return lambda objects: [v if v > 0 else None for v in map(get, objects)]


def _decimal_floats(name: str) -> Getter:
    """A Quantity's or Price's text, as the float the Parquet tables store (None kept)."""
    get = attrgetter(name)
    return lambda objects: [None if v is None else decimal_float(v) for v in map(get, objects)]


def _texts(name: str, to_text: Callable[[Any], str]) -> Getter:
    get = attrgetter(name)
    return lambda objects: [None if v is None else to_text(v) for v in map(get, objects)]


def _when_filled(name: str) -> Getter:
    """The value of an order with a fill, else None."""
    get = attrgetter(name)
    filled = attrgetter("filled_qty.raw")
    return lambda orders: [v if raw > 0 else None for v, raw in zip(map(get, orders), map(filled, orders), strict=True)]


def _order_commissions(orders: list[Order]) -> list[list[str] | None]:
    return [[money_text(c) for c in paid] or None for paid in map(methodcaller("commissions"), orders)]


def _linked_order_ids(orders: list[Order]) -> list[list[str] | None]:
    return [None if ids is None else [i.value for i in ids] for ids in map(attrgetter("linked_order_ids"), orders)]


ORDER_GETTERS: dict[str, Getter] = {  # Order.to_dict() of Nautilus 1.231, typed for the Parquet tables
    **{
        name: _identifiers(name)
        for name in (
            "trader_id",
            "strategy_id",
            "instrument_id",
            "client_order_id",
            "venue_order_id",
            "position_id",
            "account_id",
            "last_trade_id",
            "order_list_id",
            "parent_order_id",
            "exec_algorithm_id",
            "exec_spawn_id",
            "trigger_instrument_id",
        )
    },
    "type": _enum_names("order_type", order_type_to_str),
    "side": _enum_names("side", order_side_to_str),
    "time_in_force": _enum_names("time_in_force", time_in_force_to_str),
    "liquidity_side": _enum_names("liquidity_side", liquidity_side_to_str),
    "emulation_trigger": _enum_names("emulation_trigger", trigger_type_to_str),
    "trigger_type": _enum_names("trigger_type", trigger_type_to_str),
    "contingency_type": _enum_names("contingency_type", contingency_type_to_str),
    "status": _enum_names("status", order_status_to_str),
    **{name: _decimal_floats(name) for name in ("quantity", "filled_qty", "price", "trigger_price", "display_qty")},
    "activation_price": _decimal_floats("activation_price"),
    **{name: _values(name) for name in ("is_reduce_only", "is_quote_quantity", "is_post_only", "ts_init", "ts_last")},
    **{name: _values(name) for name in ("exec_algorithm_params", "tags")},
    "expire_time_ns": _positive("expire_time_ns"),
    "avg_px": _when_filled("avg_px"),
    "slippage": _when_filled("slippage"),
    "commissions": _order_commissions,
    "linked_order_ids": _linked_order_ids,
    "init_id": lambda orders: list(map(str, map(attrgetter("init_id"), orders))),
}


def getter_columns(
    objects: list[Any], getters: dict[str, Getter], keys: list[str], skip: tuple[str, ...] = (), at_a_time: int = 4096
) -> dict[str, list[Any]] | None:
    """The objects' ``to_dict()`` (whose keys are ``keys``) as columns, ``skip`` left out, or None when a key has no
    getter. ``at_a_time`` objects are read column after column while they are still in the CPU's cache: after a run
    they lie scattered over a heap of a gigabyte, and the first read of each costs a trip to memory."""
    names = [key for key in keys if key not in skip]
    if any(name not in getters for name in names):
        return None
    columns: dict[str, list[Any]] = {name: [] for name in names}
    for start in range(0, len(objects), at_a_time):
        part = objects[start : start + at_a_time]
        for name in names:
            columns[name] += getters[name](part)
    return columns


ORDERS_PER_PART = 4096  # orders read at a time: the cells of 50,000 orders would hold about 100 MB
FILLED = "__filled__"  # a column the orders carry until the fills are taken from them


def order_tables(orders: list[Order]) -> tuple[pa.Table, pa.Table]:
    """(orders, fills): every order, and the orders with a fill, as ``orders_frame`` and ``order_fills_frame``
    have them, typed; the cells read a column at a time per kind of order (``ORDER_GETTERS``), the fills taken
    from the orders' table. When every order filled and the fills report would hold every column, both are the
    same table object (``save_orders`` then writes it once)."""
    parts: list[pa.Table] = []
    columns: dict[str, None] = {}
    filled_columns: dict[str, None] = {}  # the fills report's: only the filled orders' keys count
    keys_of: dict[type, list[str]] = {}  # each kind of order's to_dict() keys, in their order
    for start in range(0, len(orders), ORDERS_PER_PART):
        part = orders[start : start + ORDERS_PER_PART]
        kinds: dict[type, list[Order]] = {}  # in order of first appearance, as the report's columns are
        first_filled: dict[type, None] = {}
        for order, raw in zip(part, map(attrgetter("filled_qty.raw"), part), strict=True):
            kind = type(order)
            kinds.setdefault(kind, []).append(order)
            if raw > 0:
                first_filled.setdefault(kind)
        for kind, group in kinds.items():
            keys = keys_of.get(kind)
            if keys is None:
                keys = keys_of[kind] = list(group[0].to_dict())
            cells = getter_columns(group, ORDER_GETTERS, keys)
            if cells is None:  # a key written after Nautilus 1.231: every cell through to_dict()
                rows = [o.to_dict() for o in group]
                keys = list(rows[0])
                cells = dict(zip(keys, map(list, zip(*(row.values() for row in rows), strict=True)), strict=True))
            columns.update(dict.fromkeys([*keys, FILLED]))
            table = {name: _column(name, values) for name, values in cells.items()}
            table[FILLED] = pa.array([o.filled_qty.raw > 0 for o in group], type=pa.bool_())
            parts.append(pa.table(table))
        for kind in first_filled:
            filled_columns.update(dict.fromkeys(keys_of[kind]))
    if not parts:
        return pa.table({}), pa.table({})
    every = _joined(parts, columns, "client_order_id")
    del parts
    all_filled = pc.all(every[FILLED]).as_py()
    filled = every if all_filled else every.filter(every[FILLED])  # all filled: no copy
    names = ["client_order_id", *(c for c in filled_columns if c not in ("client_order_id", FILLED))]
    orders_table = every.drop_columns([FILLED])
    times = [name for name in ("ts_last", "ts_init") if name in names]
    if all_filled and names == orders_table.column_names and not any(every[name].null_count for name in times):
        return orders_table, orders_table  # every order filled (market orders): the two reports are one table
    fills = filled.select(names) if filled.num_rows else pa.table({})
    for name in times:  # as the fills report does: a missing time is the epoch
        fills = fills.set_column(names.index(name), name, fills[name].fill_null(pa.scalar(0, UTC_NS)))
    return orders_table, fills


MARGIN_TYPE = pa.struct(  # MarginBalance.to_dict()
    [
        ("type", pa.string()),
        ("initial", pa.float64()),
        ("maintenance", pa.float64()),
        ("currency", pa.string()),
        ("instrument_id", pa.string()),
    ]
)


ACCOUNT_SCHEMA = pa.schema(
    [
        ("ts_event", UTC_NS),
        ("total", pa.float64()),
        ("locked", pa.float64()),
        ("free", pa.float64()),
        ("currency", pa.string()),
        ("account_id", pa.string()),
        ("account_type", pa.string()),
        ("base_currency", pa.string()),
        ("margins", pa.list_(MARGIN_TYPE)),
        ("reported", pa.bool_()),
        ("info", pa.string()),
    ]
)
ACCOUNT_ROWS_PER_GROUP = 8192  # rows built and written at a time: 16 symbols' margins are 1 kB per row in Arrow


def account_parts(states: list[Any], rows_per_part: int = ACCOUNT_ROWS_PER_GROUP) -> Iterator[pa.Table]:
    """``account_frame`` typed, in parts of consecutive rows: one row per balance per account state, by event time;
    ``margins`` a list of structs (initial, maintenance, currency, instrument) per row. Each distinct margin of a
    part is converted once and taken for every row that holds it (most repeat: an instrument's margin changes only
    when it trades)."""
    rows = [(state, balance) for state in states for balance in state.balances]
    order = report_order(np.fromiter((state.ts_event for state, _ in rows), dtype=np.int64, count=len(rows)))
    for start in range(0, len(rows), rows_per_part):
        yield _account_rows([rows[i] for i in order[start : start + rows_per_part].tolist()])


def money_float(money: Any) -> float:
    """``float(text)`` of a Money's report text (its decimal at the currency's precision): when the raw amount has
    no digits beyond that precision the text is exact, and the float nearest it is ``raw / scale`` (a division of
    two integers, correctly rounded); otherwise the text itself."""
    raw, precision = money.raw, money.currency.precision
    if raw % 10 ** (FIXED_PRECISION - precision) == 0:
        return raw / MONEY_SCALE
    return float(f"{money.as_decimal():.{precision}f}")


def money_floats(amounts: list[Any], precisions: set[int] | None = None) -> list[float]:
    """``money_float`` of each, the common case (one currency, no digits beyond its precision) in one pass;
    ``precisions``: the amounts' currencies' precisions when the caller knows them (a Money's ``currency`` is a new
    object at each read)."""
    if not amounts:
        return []
    if precisions is None:
        precisions = set(map(attrgetter("currency.precision"), amounts))
    if len(precisions) == 1:
        (precision,) = precisions  # not ``pop()``: the caller passes one set for several columns
        unit = 10 ** (FIXED_PRECISION - precision)
        raws = list(map(attrgetter("raw"), amounts))
        if not any(r % unit for r in raws):
            return [r / MONEY_SCALE for r in raws]
    return [money_float(m) for m in amounts]


def _margin_places(
    margins: list[Any], previous: list[Any], previous_places: list[int], place: Callable[[Any], int]
) -> list[int]:
    """The places (in ``distinct``) of a state's margins, given the previous row's margins and places. A state's
    margins are copies of the account's, in its order; from one state to the next usually one instrument's margin
    was added (a position opened), removed (one closed) or changed. So the two lists are compared in C
    (``MarginBalance.__eq__``: amounts and instrument) up to the first difference, and the rest on the guess that
    one margin was removed or added there; only the margins neither guess explains are looked up."""
    try:
        same = list(map(eq, margins, previous))  # as far as the shorter list goes
        first = same.index(False) if False in same else len(same)
        count, before = len(margins), len(previous)
        if first == count == before:
            return previous_places
        places = previous_places[:first]
        if count == before - 1 and all(map(eq, margins[first:], previous[first + 1 :])):
            return places + previous_places[first + 1 :]  # the margin at ``first`` was removed
        if count == before + 1 and all(map(eq, margins[first + 1 :], previous[first:])):
            return [*places, place(margins[first]), *previous_places[first:]]  # one added at ``first``
        if count == before and all(map(eq, margins[first + 1 :], previous[first + 1 :])):
            return [*places, place(margins[first]), *previous_places[first + 1 :]]  # one changed
    except ValueError:  # margins of two currencies at one place (Money refuses to compare them)
        return [place(m) for m in margins]
    return places + [place(m) for m in margins[first:]]


def _account_rows(rows: list[tuple[Any, Any]]) -> pa.Table:
    # Each distinct margin is looked up by identity (a copy shares its Money and InstrumentId objects with the
    # margin it copies, ``MarginBalance.copy``: the same objects mean the same margin, so its amounts are neither
    # hashed nor formatted) and converted once; equal margins made apart only add an equal entry to ``distinct``.
    shared: dict[tuple[int, int, int], int] = {}  # (initial, maintenance, instrument id) -> place in distinct
    distinct: dict[str, list[Any]] = {"initial": [], "maintenance": [], "currency": [], "instrument_id": []}

    def place(margin: Any) -> int:
        key = (id(margin.initial), id(margin.maintenance), id(margin.instrument_id))
        found = shared.get(key)
        if found is None:  # MarginBalance.to_dict(), typed: its amounts' text as floats (money_float)
            found = shared[key] = len(shared)
            distinct["initial"].append(money_float(margin.initial))
            distinct["maintenance"].append(money_float(margin.maintenance))
            distinct["currency"].append(margin.currency.code)
            instrument = margin.instrument_id
            distinct["instrument_id"].append(None if instrument is None else instrument.value)
        return found

    offsets, picks = array("l", [0]), array("l")
    previous: list[Any] = []
    places: list[int] = []
    for state, _ in rows:
        margins = state.margins
        places = _margin_places(margins, previous, places, place)
        previous = margins
        picks.extend(places)
        offsets.append(len(picks))
    # The other columns a column at a time, the attributes read in C (``attrgetter``).
    states = [state for state, _ in rows]
    balances = [balance for _, balance in rows]
    currencies = list(map(attrgetter("currency"), balances))  # a balance's total, locked and free are in it
    precisions = set(map(attrgetter("precision"), currencies))
    columns: dict[str, list[Any]] = {
        "ts_event": list(map(attrgetter("ts_event"), states)),
        "total": money_floats(list(map(attrgetter("total"), balances)), precisions),
        "locked": money_floats(list(map(attrgetter("locked"), balances)), precisions),
        "free": money_floats(list(map(attrgetter("free"), balances)), precisions),
        "currency": list(map(attrgetter("code"), currencies)),
        "account_id": list(map(attrgetter("account_id.value"), states)),
        "account_type": list(map(attrgetter("account_type.name"), states)),
        "base_currency": [None if c is None else c.code for c in map(attrgetter("base_currency"), states)],
        "reported": list(map(attrgetter("is_reported"), states)),
        "info": [
            "{}" if type(info) is dict and not info else json.dumps(info) for info in map(attrgetter("info"), states)
        ],
    }
    margins = pa.StructArray.from_arrays(
        [pa.array(["MarginBalance"] * len(shared), type=pa.string())]
        + [pa.array(distinct[name], type=MARGIN_TYPE.field(name).type) for name in distinct],
        fields=list(MARGIN_TYPE),
    )
    arrays = {name: pa.array(values, type=ACCOUNT_SCHEMA.field(name).type) for name, values in columns.items()}
    arrays["ts_event"] = pa.array(columns["ts_event"], type=pa.int64()).cast(UTC_NS)
    arrays["margins"] = pa.ListArray.from_arrays(
        pa.array(np.frombuffer(offsets, dtype=np.int64).astype(np.int32)),
        margins.take(np.frombuffer(picks, dtype=np.int64)) if picks else margins,
    )
    return pa.table([arrays[name] for name in ACCOUNT_SCHEMA.names], schema=ACCOUNT_SCHEMA)


def write_account_parquet(states: list[Any], path: Path, rows_per_group: int = ACCOUNT_ROWS_PER_GROUP) -> None:
    """account.parquet, written a row group at a time so the whole table is never held."""
    with pq.ParquetWriter(path, ACCOUNT_SCHEMA) as writer:
        for part in account_parts(states, rows_per_group):
            writer.write_table(part)


def report_order(ts: np.ndarray) -> np.ndarray:
    """The row order of a report sorted by these times as pandas sorts its index (``sort_index``)."""
    return pd.Series(np.arange(len(ts)), index=ts).sort_index().to_numpy()


def write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path)


def account_totals(states: list[Any]) -> pd.Series:
    """``account_frame(...)["total"].astype(float)``: the balance after each account state, by event time, without
    building the report. ``raw / MONEY_SCALE`` of two integers is the float nearest the exact quotient, as
    ``float(total.as_decimal())`` is (that Decimal is the exact quotient), without a Decimal per balance."""
    ts, totals = [], []
    for state in states:
        for balance in state.balances:
            ts.append(state.ts_event)
            totals.append(balance.total.raw / MONEY_SCALE)
    order = report_order(np.asarray(ts, dtype=np.int64))
    index = _utc(np.asarray(ts, dtype=np.int64)[order].tolist())
    return pd.Series(np.asarray(totals, dtype=np.float64)[order], index=index, name="total")


DICTS_AT_A_TIME = 4096


def dict_columns(objects: list[Any], skip: tuple[str, ...] = ()) -> dict[str, list[Any]] | list[dict[str, Any]]:
    """The objects' ``to_dict()`` as columns (name -> values), ``skip`` left out, made a few thousand dicts at a time:
    a frame built from them equals one built from the dicts (the same values per column, in the same order), without
    the 26,000 dicts of a large run (about 30 MB) held at once. The dicts themselves when their keys differ."""
    columns: dict[str, list[Any]] = {}
    keys: list[str] | None = None
    for start in range(0, len(objects), DICTS_AT_A_TIME):
        rows = [o.to_dict() for o in objects[start : start + DICTS_AT_A_TIME]]
        if keys is None:
            keys = list(rows[0])
            columns = {key: [] for key in keys if key not in skip}
        if any(list(row) != keys for row in rows):
            return [{k: v for k, v in o.to_dict().items() if k not in skip} for o in objects]
        for name, values in zip(keys, zip(*(row.values() for row in rows), strict=True), strict=True):
            if name not in skip:
                columns[name].extend(values)
    return columns


POSITION_GETTERS: dict[str, Getter] = {  # Position.to_dict() of Nautilus 1.231
    "position_id": _identifiers("id"),
    **{
        name: _identifiers(name)
        for name in (
            "trader_id",
            "strategy_id",
            "instrument_id",
            "account_id",
            "opening_order_id",
            "closing_order_id",
        )
    },
    "entry": _enum_names("entry", order_side_to_str),
    "side": _enum_names("side", position_side_to_str),
    "quantity": _texts("quantity", quantity_text),
    "peak_qty": _texts("peak_qty", quantity_text),
    **{name: _values(name) for name in ("ts_init", "ts_opened", "ts_last", "avg_px_open")},
    **{name: _positive(name) for name in ("ts_closed", "duration_ns", "avg_px_close")},
    "commissions": lambda positions: [
        sorted([money_text(c) for c in paid]) for paid in map(methodcaller("commissions"), positions)
    ],
    "realized_return": lambda positions: [round(v, 5) for v in map(attrgetter("realized_return"), positions)],
    "realized_pnl": _texts("realized_pnl", money_text),
}
POSITION_SKIPPED = ("signed_qty", "quote_currency", "base_currency", "settlement_currency")  # not in the report


def positions_frame(positions: list[Any], snapshots: list[Any] | None = None) -> pd.DataFrame:
    """``Trader.generate_positions_report`` (positions and NETTING snapshots), by open time."""
    everything = [*positions, *(snapshots or [])]
    if not everything:
        return pd.DataFrame()
    snapshot_ids = {str(p.id) for p in snapshots or []}
    columns = getter_columns(everything, POSITION_GETTERS, list(everything[0].to_dict()), POSITION_SKIPPED)
    if columns is None:  # a key written after Nautilus 1.231: every cell through to_dict()
        columns = dict_columns(everything, POSITION_SKIPPED)
    report = pd.DataFrame(columns).set_index("position_id")
    report = report.sort_values(["ts_opened", "ts_closed", "position_id"])
    report["ts_opened"] = _utc(report["ts_opened"].tolist())
    closed = report["ts_closed"]
    if closed.isna().any():  # open positions: Nautilus's cell by cell conversion, NA kept (an object column)
        report["ts_closed"] = [unix_nanos_to_dt(ts) if not pd.isna(ts) else pd.NA for ts in closed]
    else:
        report["ts_closed"] = _utc(closed.tolist())
    report["is_snapshot"] = report.index.isin(snapshot_ids)
    return report


def positions_csv_cells(positions: list[Any]) -> tuple[list[str], list[list[str]]] | None:
    """(header, cells) of ``positions_frame(positions)``'s CSV (``write_csv``), byte for byte, without the frame:
    the getters' columns put in the report's order (open time, close time, position id) and turned into text at
    once. None (write the frame) when a position is still open, a key has no getter, or a column holds values a
    frame would type otherwise (a ``None`` among ints); NETTING snapshots are not taken here either (their ids
    repeat the positions')."""
    if not positions:
        return None
    columns = getter_columns(positions, POSITION_GETTERS, list(positions[0].to_dict()), POSITION_SKIPPED)
    if columns is None or None in columns["ts_closed"]:
        return None
    ordered = sorted(
        range(len(positions)),
        key=lambda i, o=columns["ts_opened"], c=columns["ts_closed"], p=columns["position_id"]: (o[i], c[i], p[i]),
    )
    take = itemgetter(*ordered) if len(ordered) > 1 else lambda values: (values[ordered[0]],)
    names = ["position_id", *(name for name in columns if name != "position_id"), "is_snapshot"]
    cells = []
    for name in names[:-1]:
        values = list(take(columns[name]))
        if name in ("ts_opened", "ts_closed"):
            text = utc_text(np.array(values, dtype=np.int64)).tolist()
        else:
            text = value_cells(values)
        if text is None:
            return None
        cells.append(text)
    cells.append(["False"] * len(positions))
    return names, cells
