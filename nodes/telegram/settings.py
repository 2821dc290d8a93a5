"""Which notification an event is, and how loud it may be (on / silent / off), like other bots' settings."""

from collections.abc import Mapping

from strategies.events import (
    EntryFilledEvent,
    ExitEvent,
    NodeEvent,
    PositionClosedEvent,
    RiskEvent,
    SignalEvent,
)

ON = "on"
SILENT = "silent"  # delivered without a notification sound (Telegram's disable_notification)
OFF = "off"
LEVELS = (ON, SILENT, OFF)

# The trader hears about what matters by default; the fine-grained stop moves stay quiet unless asked for.
DEFAULT_EVENT_SETTINGS: dict[str, str] = {
    "signal": ON,
    "entry_filled": ON,
    "tp1": ON,
    "tp2": ON,
    "stop": ON,
    "dynamic_exit": ON,
    "flatten": ON,
    "position_closed": ON,
    "breakeven": OFF,  # TP1's message already says the stop went to break-even
    "stop_adjusted": OFF,
    "stop_rearmed": OFF,
    "daily_loss_limit": ON,
    "daily_limit_reset": SILENT,
    "paused": SILENT,
    "resumed": SILENT,
    "signal_refused": SILENT,
    "node_started": SILENT,
    "node_stopped": SILENT,
    "node_reconnected": SILENT,
    "node_reconciled": ON,  # what the node repaired after lost messages or a restart
    "node_error": ON,
    "node_unprotected": ON,  # a position without a stop that the node cannot repair quickly: act now
}

_EXIT_KEYS = {
    "TP1": "tp1",
    "TP2": "tp2",
    "STOP": "stop",
    "BREAKEVEN": "breakeven",
    "DYNAMIC_TIGHTEN": "stop_adjusted",
    "DYNAMIC_TRAIL": "stop_adjusted",
    "DYNAMIC_EXIT": "dynamic_exit",
    "FLATTEN": "flatten",
    "STOP_REARMED": "stop_rearmed",
}
_RISK_KEYS = {
    "DAILY_LOSS_LIMIT": "daily_loss_limit",
    "DAILY_LIMIT_RESET": "daily_limit_reset",
    "PAUSED": "paused",
    "RESUMED": "resumed",
    "SIGNAL_REFUSED": "signal_refused",
}
_NODE_KEYS = {
    "STARTED": "node_started",
    "STOPPED": "node_stopped",
    "RECONNECTED": "node_reconnected",
    "RECONCILED": "node_reconciled",
    "ERROR": "node_error",
    "UNPROTECTED": "node_unprotected",
}


def resolve_event_settings(overrides: Mapping[str, str] | None) -> dict[str, str]:
    """Defaults with the config's overrides applied; a typo fails at start instead of silencing an event."""
    settings = dict(DEFAULT_EVENT_SETTINGS)
    for key, level in (overrides or {}).items():
        if key not in settings:
            from nodes.settings import did_you_mean

            raise ValueError(
                f"unknown Telegram event setting {key!r}{did_you_mean(key, settings)}; "
                f"known: {', '.join(sorted(settings))}"
            )
        if level not in LEVELS:
            raise ValueError(f"Telegram event setting {key}={level!r} must be one of {', '.join(LEVELS)}")
        settings[key] = level
    return settings


def event_key(event: object) -> str | None:
    """The settings key of an event, or None for a kind this version does not know (rendered nowhere)."""
    if isinstance(event, SignalEvent):
        return "signal"
    if isinstance(event, EntryFilledEvent):
        return "entry_filled"
    if isinstance(event, PositionClosedEvent):
        return "position_closed"
    if isinstance(event, ExitEvent):
        return _EXIT_KEYS.get(event.kind)
    if isinstance(event, RiskEvent):
        return _RISK_KEYS.get(event.kind)
    if isinstance(event, NodeEvent):
        return _NODE_KEYS.get(event.kind)
    return None
