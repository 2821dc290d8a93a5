"""Fetch Binance Vision USDT-M zips (klines, fundingRate, metrics, markPriceKlines), checked against their published
sha256, and the exchange's current exchangeInfo (the instruments' filters) from the Binance REST API.

Files land in a local mirror of the Vision tree under ``dest`` (``futures/um/monthly/klines/BTCUSDT/1m/...``),
written through a temporary file and renamed only once their checksum matched, so a half-written or corrupt
file never carries the final name. A file already present with the published checksum is not fetched again.
"""

import calendar
import hashlib
import http.client
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TextIO

from catalog.endpoints import DEFAULT_BASE_URL, DEFAULT_DEST

EXCHANGE_INFO_PATH = "fapi/v1/exchangeInfo"
DATASETS = ("klines", "fundingRate", "metrics", "markPriceKlines")
_CHUNK = 1 << 16
_SYMBOL = re.compile(r"^[0-9A-Z]{2,30}$")
_CHECKSUM_LINE = re.compile(r"^(?P<sha>[0-9a-fA-F]{64})\s+\*?(?P<name>\S+)\s*$")


class DownloadError(Exception):
    """A download that cannot complete; the message names the URL or file and what to do."""


class RemoteFileMissing(DownloadError):
    """The server answered 404: Binance has not published this file (yet)."""


class ChecksumMismatch(DownloadError):
    """The bytes received do not hash to the published sha256."""


@dataclass(frozen=True)
class VisionFile:
    """One zip on data.binance.vision; ``fallback`` is fetched instead when this (monthly) file is missing."""

    path: str  # relative to the base URL: data/futures/um/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01.zip
    dataset: str  # one of DATASETS
    optional: bool  # funding and metrics only add to klines: a missing one is a warning, not an error
    fallback: tuple["VisionFile", ...] = ()

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def local_path(self, dest: Path) -> Path:
        return Path(dest) / self.path.removeprefix("data/")


# ---------------------------------------------------------------------------------------------- planning


def _months(start: date, end: date) -> Iterator[tuple[int, int]]:
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        yield year, month
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def _um(period: str, dataset: str, symbol: str, *parts: str) -> str:
    return "/".join(["data/futures/um", period, dataset, symbol, *parts])


def _daily_klines(symbol: str, interval: str, day: date, dataset: str = "klines") -> VisionFile:
    name = f"{symbol}-{interval}-{day:%Y-%m-%d}.zip"
    return VisionFile(_um("daily", dataset, symbol, interval, name), dataset, optional=dataset != "klines")


def plan_downloads(
    symbols: Iterable[str],
    start: date,
    end: date,
    interval: str = "1m",
    datasets: Iterable[str] = DATASETS,
    today: date | None = None,
    mark_interval: str = "1h",
) -> list[VisionFile]:
    """The Vision files covering ``start``..``end`` (inclusive, UTC days) for each symbol.

    A month that has ended comes as one monthly file (daily files as its fallback, since Binance publishes the
    monthly zip a few days into the next month); the running month comes as daily files. Vision publishes a
    day's file the day after, so days from ``today`` on are left out.
    """
    today = today or datetime.now(UTC).date()
    datasets = tuple(datasets)
    unknown = set(datasets) - set(DATASETS)
    if unknown:
        raise DownloadError(f"unknown dataset(s) {sorted(unknown)}; choose from {', '.join(DATASETS)}")
    from catalog.files import INTERVALS_MS  # here: catalog.files loads pandas, which `ats --help` does not need

    for name, value in (("kline", interval), ("mark-price kline", mark_interval)):
        if value not in INTERVALS_MS:
            raise DownloadError(f"unknown {name} interval {value!r}; choose from {', '.join(INTERVALS_MS)}")
    if start > end:
        raise DownloadError(f"start {start} is after end {end}")
    last_day = min(end, today - timedelta(days=1))
    if start > last_day:
        latest = today - timedelta(days=1)
        raise DownloadError(f"nothing published yet: Vision has daily files up to {latest}")

    files: list[VisionFile] = []
    for raw_symbol in symbols:
        symbol = raw_symbol.upper()
        if not _SYMBOL.match(symbol):
            raise DownloadError(f"{raw_symbol!r} is not a Binance symbol (expected e.g. BTCUSDT)")
        for year, month in _months(start, last_day):
            month_first = date(year, month, 1)
            month_last = date(year, month, calendar.monthrange(year, month)[1])
            first, last = max(start, month_first), min(last_day, month_last)
            month_done = month_last < today
            for dataset, step in (("klines", interval), ("markPriceKlines", mark_interval)):
                if dataset not in datasets:
                    continue
                daily = tuple(_daily_klines(symbol, step, day, dataset) for day in _days(first, last))
                if month_done:
                    name = f"{symbol}-{step}-{year:04d}-{month:02d}.zip"
                    monthly = _um("monthly", dataset, symbol, step, name)
                    files.append(VisionFile(monthly, dataset, optional=dataset != "klines", fallback=daily))
                else:
                    files.extend(daily)
            if "fundingRate" in datasets:
                # Vision publishes funding only monthly: the running month is a 404 and is reported as such.
                name = f"{symbol}-fundingRate-{year:04d}-{month:02d}.zip"
                funding = _um("monthly", "fundingRate", symbol, name)
                files.append(VisionFile(funding, "fundingRate", optional=True))
            if "metrics" in datasets:
                for day in _days(first, last):
                    name = f"{symbol}-metrics-{day:%Y-%m-%d}.zip"
                    files.append(VisionFile(_um("daily", "metrics", symbol, name), "metrics", optional=True))
    return files


# ---------------------------------------------------------------------------------------------- progress


class ProgressBar:
    """Files done and bytes of the current file on one redrawn stderr line; a line per file if not a tty."""

    def __init__(self, total_files: int, stream: TextIO | None = None, width: int = 24) -> None:
        self.stream = stream or sys.stderr
        self.total_files = total_files
        self.done = 0
        self.width = width
        self.interactive = self.stream.isatty()
        self._name = ""
        self._size: int | None = None
        self._received = 0
        self._last_draw = 0.0

    def start_file(self, name: str, size: int | None) -> None:
        self._name, self._size, self._received = name, size, 0
        self._draw(force=True)

    def advance(self, nbytes: int) -> None:
        self._received += nbytes
        self._draw()

    def finish_file(self, status: str, notable: bool = False) -> None:
        """Count a file as done; a ``notable`` status (a warning) stays visible above a redrawn bar."""
        self.done += 1
        if self.interactive:
            if notable:
                self.message(f"{self._name}: {status}")
            self._draw(force=True)
        else:
            print(f"[{self.done}/{self.total_files}] {self._name}: {status}", file=self.stream, flush=True)

    def message(self, text: str) -> None:
        """A warning or note printed above the bar without garbling it."""
        if self.interactive:
            self.stream.write("\r\033[K")
        print(text, file=self.stream, flush=True)
        if self.interactive:
            self._draw(force=True)

    def close(self) -> None:
        if self.interactive:
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.interactive or (not force and now - self._last_draw < 0.1):
            return
        self._last_draw = now
        share = self.done / self.total_files if self.total_files else 1.0
        filled = int(share * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        mb = self._received / 1e6
        size = f"{mb:.1f}/{self._size / 1e6:.1f} MB" if self._size else f"{mb:.1f} MB"
        self.stream.write(f"\r\033[K[{bar}] {self.done}/{self.total_files} files  {self._name} {size}")
        self.stream.flush()


# ---------------------------------------------------------------------------------------------- HTTP


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code >= 500 or exc.code == 429
    return isinstance(exc, urllib.error.URLError | TimeoutError | ConnectionError | http.client.HTTPException)


@dataclass
class Fetcher:
    """GETs relative paths from a Vision mirror, retrying server errors and dropped connections."""

    base_url: str = DEFAULT_BASE_URL
    timeout: float = 30.0
    retries: int = 4
    backoff: float = 1.0  # seconds before the first retry, doubled after each
    user_agent: str = "ats-data-download"

    def __post_init__(self) -> None:
        parsed = urllib.parse.urlparse(self.base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise DownloadError(f"base URL {self.base_url!r} must look like https://data.binance.vision")
        self.base_url = self.base_url.rstrip("/")

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path}"

    def _with_retries[T](self, path: str, attempt: Callable[[http.client.HTTPResponse], T]) -> T:
        url = self.url(path)
        delay = self.backoff
        for number in range(self.retries + 1):
            try:
                request = urllib.request.Request(url, headers={"User-Agent": self.user_agent})
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return attempt(response)
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    raise RemoteFileMissing(f"{url}: not found (404)") from None
                if not _transient(exc) or number == self.retries:
                    raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as exc:
                if number == self.retries:
                    reason = getattr(exc, "reason", exc)
                    raise DownloadError(
                        f"{url}: {reason} (gave up after {self.retries + 1} attempts; check the network or --base-url)"
                    ) from None
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def text(self, path: str) -> str:
        return self._with_retries(path, lambda response: response.read().decode("utf-8", errors="replace"))

    def to_file(
        self, path: str, target: Path, on_start: Callable[[int | None], None], on_bytes: Callable[[int], None]
    ) -> str:
        """Stream ``path`` into ``target`` (truncated per attempt); returns the sha256 hex digest."""

        def attempt(response: http.client.HTTPResponse) -> str:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            on_start(expected)
            digest = hashlib.sha256()
            received = 0
            with open(target, "wb") as out:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    on_bytes(len(chunk))
            if expected is not None and received != expected:
                raise http.client.IncompleteRead(b"", expected - received)
            return digest.hexdigest()

        return self._with_retries(path, attempt)


# ---------------------------------------------------------------------------------------------- download


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def parse_checksum(text: str, expected_name: str, url: str) -> str:
    """The sha256 in a Vision ``.CHECKSUM`` file (``<sha256>  <name>``), checked to name ``expected_name``."""
    match = _CHECKSUM_LINE.match(text.strip())
    if not match:
        raise DownloadError(f"{url}: not a checksum file (expected '<sha256>  {expected_name}')")
    if match["name"] != expected_name:
        raise DownloadError(f"{url}: checksum is for {match['name']!r}, not {expected_name!r}")
    return match["sha"].lower()


def _write_atomically(target: Path, data: bytes) -> None:
    temporary = target.with_name(f".{target.name}.part-{os.getpid()}")
    temporary.write_bytes(data)
    os.replace(temporary, target)


@dataclass
class DownloadResult:
    files: list[Path] = field(default_factory=list)  # verified local zips, ready to ingest
    fetched: list[str] = field(default_factory=list)  # names downloaded this run
    cached: list[str] = field(default_factory=list)  # names already present with the published checksum
    missing: list[str] = field(default_factory=list)  # URLs of optional files Vision does not have


def fetch_verified(item: VisionFile, fetcher: Fetcher, dest: Path, bar: ProgressBar | None = None) -> tuple[Path, bool]:
    """(local path, fetched?) of one file whose bytes match its published sha256; raises when they cannot."""
    checksum_url = fetcher.url(item.path + ".CHECKSUM")
    expected = parse_checksum(fetcher.text(item.path + ".CHECKSUM"), item.name, checksum_url)
    target = item.local_path(dest)
    if target.is_file() and sha256_of(target) == expected:
        return target, False
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.part-{os.getpid()}")
    try:
        actual = fetcher.to_file(
            item.path,
            temporary,
            on_start=lambda size: bar.start_file(item.name, size) if bar else None,
            on_bytes=lambda n: bar.advance(n) if bar else None,
        )
        if actual != expected:
            raise ChecksumMismatch(
                f"{item.name}: checksum mismatch, refusing the file: sha256 of {fetcher.url(item.path)} is "
                f"{actual}, but {checksum_url} says {expected} "
                "(a corrupt transfer or mirror; try again later)"
            )
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    _write_atomically(target.with_name(target.name + ".CHECKSUM"), f"{expected}  {item.name}\n".encode())
    return target, True


def download(
    files: list[VisionFile],
    fetcher: Fetcher,
    dest: Path = DEFAULT_DEST,
    bar: ProgressBar | None = None,
    warn: Callable[[str], None] | None = None,
) -> DownloadResult:
    """Fetch and verify every planned file; a missing or corrupt klines file stops all with an error."""
    warn = warn or (lambda text: print(text, file=sys.stderr))
    result = DownloadResult()
    for item in files:
        if bar:
            bar.start_file(item.name, None)
        try:
            local, fetched = fetch_verified(item, fetcher, dest, bar)
        except RemoteFileMissing as exc:
            if item.fallback:
                if bar:
                    bar.total_files += len(item.fallback)
                    bar.finish_file(f"not published, using {len(item.fallback)} daily file(s)")
                fallback = _download_fallback(item, fetcher, dest, bar, warn)
                for field_name in ("files", "fetched", "cached", "missing"):
                    getattr(result, field_name).extend(getattr(fallback, field_name))
                continue
            if not item.optional:
                raise DownloadError(f"{item.dataset} file missing: {exc}") from None
            result.missing.append(fetcher.url(item.path))
            note = f"warning: {item.dataset} not available, continuing without it: {fetcher.url(item.path)}"
            if bar:
                bar.finish_file(note, notable=True)
            else:
                warn(note)
            continue
        result.files.append(local)
        (result.fetched if fetched else result.cached).append(item.name)
        if bar:
            bar.finish_file("downloaded" if fetched else "already present, checksum ok")
    return result


def fetch_exchange_info(fetcher: Fetcher, dest: Path = DEFAULT_DEST) -> Path:
    """GET /fapi/v1/exchangeInfo from the Binance API at ``fetcher.base_url``, check it, and save it under
    ``dest/exchangeInfo/`` named by its serverTime; returns the file (ready for ``ats data ingest``)."""
    from catalog.instruments import ExchangeInfoError, read_exchange_info

    url = fetcher.url(EXCHANGE_INFO_PATH)
    text = fetcher.text(EXCHANGE_INFO_PATH)
    try:
        data = json.loads(text)
        info = read_exchange_info(data, url)
    except json.JSONDecodeError as exc:
        raise DownloadError(f"{url}: the answer is not JSON ({exc.msg}); is --api-url a Binance futures API?") from None
    except ExchangeInfoError as exc:
        raise DownloadError(str(exc)) from None
    stamp = datetime.fromtimestamp(info.server_time_ns / 1e9, UTC).strftime("%Y%m%dT%H%M%SZ")
    target = Path(dest) / "exchangeInfo" / f"exchangeInfo-{stamp}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(target, text.encode("utf-8"))
    return target


def _download_fallback(
    item: VisionFile, fetcher: Fetcher, dest: Path, bar: ProgressBar | None, warn: Callable[[str], None]
) -> DownloadResult:
    daily = [VisionFile(f.path, f.dataset, item.optional) for f in item.fallback]
    try:
        return download(daily, fetcher, dest, bar, warn)
    except DownloadError as exc:
        monthly = fetcher.url(item.path)
        raise DownloadError(f"{exc} (the monthly file {monthly} is not published either)") from None
