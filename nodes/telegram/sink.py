"""Backtest mode: rendered messages go to a JSON-lines file instead of Telegram, for reports and tests."""

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO


@dataclass(frozen=True)
class RenderedMessage:
    ts: str  # the event's time, ISO 8601 UTC
    event: str  # settings key, e.g. "tp1"
    silent: bool
    text: str


class FileSink:
    """Appends one JSON object per message; opened lazily so a run without messages leaves no file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: TextIO | None = None

    def write(self, message: RenderedMessage) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Line-buffered: a BacktestNode run with dispose_on_completion=False never disposes the actor,
            # and the report reads the file right after the run.
            self._file = self.path.open("w", encoding="utf-8", buffering=1)
        self._file.write(json.dumps(asdict(message), ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_messages(path: str | Path) -> list[RenderedMessage]:
    """The messages a backtest rendered, in order; what a backtest report shows."""
    file = Path(path)
    if not file.exists():
        return []
    with file.open(encoding="utf-8") as handle:
        return [RenderedMessage(**json.loads(line)) for line in handle if line.strip()]
