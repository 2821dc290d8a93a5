"""A Binance-Vision-shaped HTTP server on 127.0.0.1, serving zips + .CHECKSUM files built from ../shared/data.

The klines are the original Vision monthly CSVs (stored gzipped in shared data), re-zipped under their Vision
names; daily files are the same rows split by UTC day; funding files are the real funding events of the
freqtrade-derived sets rewritten in Vision's fundingRate columns. Faults are injected per path: a corrupted
checksum, or a number of 503 answers before the real one.
"""

import csv
import gzip
import hashlib
import io
import json
import threading
import zipfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

UM = "data/futures/um"
FUNDING_FOLDER = "ohlcv_2025-03_2025-06"
KLINE_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore"
).split(",")
METRICS_HEADER = (
    "create_time,symbol,sum_open_interest,sum_open_interest_value,count_toptrader_long_short_ratio,"
    "sum_toptrader_long_short_ratio,count_long_short_ratio,sum_taker_long_short_vol_ratio"
).split(",")


def _month_of(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m")


def _zip_bytes(csv_name: str, text: bytes) -> bytes:
    buffer = io.BytesIO()
    # A fixed timestamp keeps the zip bytes (and so the checksum) the same on every build.
    info = zipfile.ZipInfo(csv_name, date_time=(2024, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, text)
    return buffer.getvalue()


class VisionTree:
    """Files laid out like data.binance.vision under ``root``."""

    def __init__(self, root: Path, shared_data: Path) -> None:
        self.root = Path(root)
        self.shared_data = Path(shared_data)

    def publish(self, path: str, csv_text: bytes) -> None:
        """Write ``path`` (a .zip) holding one CSV of the same base name, and its .CHECKSUM."""
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        name = target.name
        data = _zip_bytes(name.removesuffix(".zip") + ".csv", csv_text)
        target.write_bytes(data)
        (self.root / f"{path}.CHECKSUM").write_text(f"{hashlib.sha256(data).hexdigest()}  {name}\n")

    def source_klines(self, symbol: str, month: str) -> bytes:
        """The original Vision monthly CSV, e.g. ("FILUSDT", "2024-09")."""
        source = self.shared_data / "klines_1m_vision" / f"{symbol}-1m-{month}.csv.gz"
        return gzip.decompress(source.read_bytes())

    def add_monthly_klines(self, symbol: str, month: str) -> str:
        path = f"{UM}/monthly/klines/{symbol}/1m/{symbol}-1m-{month}.zip"
        self.publish(path, self.source_klines(symbol, month))
        return path

    def daily_klines(self, symbol: str, month: str) -> tuple[bytes, dict[str, list[bytes]]]:
        """(header line, the monthly file's rows grouped by UTC day "YYYY-MM-DD")."""
        header, *rows = self.source_klines(symbol, month).splitlines(keepends=True)
        days: dict[str, list[bytes]] = {}
        for row in rows:
            day = datetime.fromtimestamp(int(row.split(b",", 1)[0]) / 1000, UTC).strftime("%Y-%m-%d")
            days.setdefault(day, []).append(row)
        return header, days

    def add_daily_klines(self, symbol: str, month: str, days: list[str]) -> list[str]:
        header, by_day = self.daily_klines(symbol, month)
        paths = []
        for day in days:
            path = f"{UM}/daily/klines/{symbol}/1m/{symbol}-1m-{day}.zip"
            self.publish(path, header + b"".join(by_day[day]))
            paths.append(path)
        return paths

    def funding_rows(self, symbol: str, month: str, folder: str = FUNDING_FOLDER) -> list[tuple[int, str]]:
        """Real funding events (ms, rate) of one month."""
        with gzip.open(self.shared_data / folder / f"{symbol}-funding_rate.csv.gz", "rt") as fh:
            rows = [(int(r["funding_time_ms"]), r["funding_rate"]) for r in csv.DictReader(fh)]
        return [(ms, rate) for ms, rate in rows if _month_of(ms) == month]

    def add_monthly_funding(self, symbol: str, month: str, folder: str = FUNDING_FOLDER) -> str:
        rows = self.funding_rows(symbol, month, folder)
        lines = ["calc_time,funding_interval_hours,last_funding_rate"]
        for index, (ms, rate) in enumerate(rows):
            neighbour = rows[index - 1][0] if index else rows[min(1, len(rows) - 1)][0]
            hours = max(1, round(abs(ms - neighbour) / 3_600_000))
            lines.append(f"{ms},{hours},{rate}")
        path = f"{UM}/monthly/fundingRate/{symbol}/{symbol}-fundingRate-{month}.zip"
        self.publish(path, ("\n".join(lines) + "\n").encode())
        return path

    def add_exchange_info(self, data: dict) -> str:
        """Serve ``data`` as the Binance futures API's /fapi/v1/exchangeInfo answer (the same loopback host)."""
        path = "fapi/v1/exchangeInfo"
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(data))
        return path

    def add_monthly_mark(self, symbol: str, month: str, folder: str = FUNDING_FOLDER) -> str:
        """Real 8h mark-price klines of one month, in Vision's 12-column markPriceKlines layout (zero volumes)."""
        with gzip.open(self.shared_data / folder / f"{symbol}-mark-8h.csv.gz", "rt") as fh:
            rows = [r for r in csv.DictReader(fh) if _month_of(int(r["open_time_ms"])) == month]
        lines = [",".join(KLINE_HEADER)]
        for r in rows:
            start, end = int(r["open_time_ms"]), int(r["open_time_ms"]) + 8 * 3_600_000 - 1
            lines.append(f"{start},{r['open']},{r['high']},{r['low']},{r['close']},0,{end},0,0,0,0,0")
        path = f"{UM}/monthly/markPriceKlines/{symbol}/8h/{symbol}-8h-{month}.zip"
        self.publish(path, ("\n".join(lines) + "\n").encode())
        return path

    def add_daily_metrics(self, symbol: str, day: str, rows: list[tuple[str, str, str]]) -> str:
        """A Vision metrics file of one day: rows of (create_time, sum_open_interest, sum_open_interest_value)."""
        lines = [",".join(METRICS_HEADER)]
        lines += [f"{t},{symbol},{oi},{oiv},0,0,0,0" for t, oi, oiv in rows]
        path = f"{UM}/daily/metrics/{symbol}/{symbol}-metrics-{day}.zip"
        self.publish(path, ("\n".join(lines) + "\n").encode())
        return path

    def corrupt_checksum(self, path: str) -> None:
        """Publish a checksum that does not match the zip (a real sha256 of other bytes)."""
        checksum = self.root / f"{path}.CHECKSUM"
        name = checksum.name.removesuffix(".CHECKSUM")
        checksum.write_text(f"{hashlib.sha256(b'not the file').hexdigest()}  {name}\n")


class _Handler(SimpleHTTPRequestHandler):
    server: "VisionHTTPServer"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.record(self.path)
        if self.server.take_failure(self.path):
            self.send_error(503, "Slow Down")
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - keep test output quiet
        pass


class VisionHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
        self.requests: list[str] = []
        self.failures: Counter[str] = Counter()
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def record(self, path: str) -> None:
        with self._lock:
            self.requests.append(path.lstrip("/"))

    def fail(self, path: str, times: int) -> None:
        """Answer the next ``times`` GETs of ``path`` with 503."""
        with self._lock:
            self.failures[path.lstrip("/")] += times

    def take_failure(self, path: str) -> bool:
        with self._lock:
            key = path.lstrip("/")
            if self.failures[key] > 0:
                self.failures[key] -= 1
                return True
            return False


@contextmanager
def serve(root: Path) -> Iterator[VisionHTTPServer]:
    server = VisionHTTPServer(root)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
