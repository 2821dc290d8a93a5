"""The score: a plain function from factor values to a direction and a strength, with its breakdown.

No engine needed: ``score({"T": 40.0, "M": None, ...}, FactorConfig())``. A value of None means the factor is
not available (no data source, or still warming up); the weighted sum is renormalised over the factors that
are, and the result lists which were live and which were missing, so nothing is silently 0. The config's
``direction`` says how each factor is read ("fade": the trend-type factors contrarian, ``factor_sign``).
"""

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from factors.config import (
    ALL_FACTORS,
    DIRECTIONS,
    FADED_FACTORS,
    MODULATOR,
    QUALITY_FACTORS,
    SIGNED_FACTORS,
    FactorConfig,
)

LONG = "LONG"
SHORT = "SHORT"
FLAT = "FLAT"


@dataclass(frozen=True)
class ScoreResult:
    """One symbol's score and why.

    score: weighted mean of the live signed factors as the config's direction reads them, -100..+100
    (contributions sum to it). strength: |score| modulated by F, 0..100. direction: LONG / SHORT from the
    thresholds, FLAT otherwise or when a quality gate (L, I) closed. contributions: each signed factor's share
    of ``score``, with the sign it was read with (0 for L, I, F, which do not vote). values: every factor as
    measured (not flipped by "fade"), None when missing. notes: why a factor is missing or a gate shut.
    """

    direction: str
    strength: float
    score: float
    contributions: dict[str, float]
    values: dict[str, float | None]
    available: tuple[str, ...]
    missing: tuple[str, ...]
    instrument_id: str | None = None
    ts_ns: int | None = None
    gated: tuple[str, ...] = ()
    notes: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        """``{"T": {"value": .., "contribution": ..}, ...}`` for the live factors
        (SignalEvent.factors_json)."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    def to_dict(self) -> dict[str, dict[str, float]]:
        return {
            key: {"value": round(float(value), 4), "contribution": round(self.contributions.get(key, 0.0), 4)}
            for key, value in self.values.items()
            if value is not None
        }

    def top_factors(self, n: int = 3) -> list[tuple[str, float]]:
        """The n factors that pushed hardest in the signal's direction; for FLAT, the largest |contribution|."""
        if self.direction == FLAT:
            ranked = sorted(self.contributions.items(), key=lambda kv: -abs(kv[1]))
            return [(k, v) for k, v in ranked if v != 0.0][:n]
        sign = 1.0 if self.direction == LONG else -1.0
        ranked = sorted(self.contributions.items(), key=lambda kv: -sign * kv[1])
        return [(k, v) for k, v in ranked if sign * v > 0.0][:n]


def factor_sign(key: str, direction: str) -> float:
    """How the score reads factor ``key``: +1 as measured, -1 contrarian (a "fade" of T, M, C, V and F)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction {direction!r}: use one of {list(DIRECTIONS)}")
    if key not in ALL_FACTORS:
        raise ValueError(f"unknown factor {key!r}; known: {list(ALL_FACTORS)}")
    return -1.0 if direction == "fade" and key in FADED_FACTORS else 1.0


def directed(key: str, value: float | None, config: FactorConfig) -> float | None:
    """A factor's value as the model reads it under ``config.direction`` (None stays None).

    What the score sums and what the exit rules read along a trade (the trend that supports it): under "fade"
    a T of +80 (a strong rise) reads -80.
    """
    return None if value is None else factor_sign(key, config.direction) * value


_KNOWN_FACTORS = frozenset(ALL_FACTORS)
_GATES = (("L", "liquidity_gate"), ("I", "independence_gate"))
# every factor's contribution but the modulator's: the unsigned ones are 0 (none of them votes)
_ZERO_CONTRIBUTIONS = dict.fromkeys((*SIGNED_FACTORS, *QUALITY_FACTORS), 0.0)


class ScoreModel:
    """``score`` under one config, with its weights, signs and gates looked up once: what a scan of every
    symbol uses (``FactorBook``); ``score()`` builds one per call. See docs/factors.md, "Combining"."""

    __slots__ = ("config", "_weighted", "_modulator_sign", "_gates")

    def __init__(self, config: FactorConfig) -> None:
        self.config = config
        direction = config.direction
        # the signed factors that count, in SIGNED_FACTORS order: (key, weight, sign)
        self._weighted = tuple(
            (k, config.weight(k), factor_sign(k, direction)) for k in SIGNED_FACTORS if config.weight(k) > 0
        )
        self._modulator_sign = factor_sign(MODULATOR, direction)
        self._gates = tuple((k, getattr(config, name)) for k, name in _GATES if getattr(config, name) > 0)

    def score(
        self,
        values: Mapping[str, float | None],
        instrument_id: str | None = None,
        ts_ns: int | None = None,
        notes: Mapping[str, str] | None = None,
    ) -> ScoreResult:
        """Combine factor values (None = not available) into a ScoreResult."""
        unknown = values.keys() - _KNOWN_FACTORS
        if unknown:
            raise ValueError(f"score(): unknown factor key(s) {sorted(unknown)}; known: {list(ALL_FACTORS)}")
        clean: dict[str, float | None] = {}
        available: list[str] = []
        missing: list[str] = []
        isfinite = math.isfinite
        for key in ALL_FACTORS:
            v = values.get(key)
            if v is None:
                missing.append(key)
            else:
                if not isfinite(v):
                    raise ValueError(f"score(): factor {key} is {v}; a factor must be finite or None (not available)")
                v = float(v)
                available.append(key)
            clean[key] = v
        return self.combine(clean, available, missing, dict(notes or {}), instrument_id, ts_ns)

    def combine(
        self,
        clean: dict[str, float | None],
        available: list[str],
        missing: list[str],
        all_notes: dict[str, str],
        instrument_id: str | None,
        ts_ns: int | None,
    ) -> ScoreResult:
        """``score`` from its checked inputs: every factor of ``ALL_FACTORS`` in ``clean``, in that order, each a
        finite float or None; ``available`` / ``missing`` its keys in that order; ``all_notes`` a dict the result
        may keep (the gates add theirs). ``FactorBook.score`` builds them in the one pass that reads the values."""
        config = self.config
        weighted = self._weighted
        total_w = sum([w for k, w, _ in weighted if clean[k] is not None])
        # every contribution 0 (the signed factors', then the unsigned ones', in the result's order), the live ones
        # set in one pass: the same products in the same order. The unsigned zeros summed last leave the sum as it
        # is: the sum of floats starts at +0.0 and so never reaches -0.0, and x + 0.0 is x for any other x.
        contributions = _ZERO_CONTRIBUTIONS.copy()
        if total_w > 0:
            for k, w, sign in weighted:
                v = clean[k]
                if v is not None:
                    contributions[k] = w * (sign * v) / total_w
        raw = sum(contributions.values())
        # max(-100.0, min(100.0, raw)), spelled out (a scan scores every symbol): the same float, zero's sign too
        s = -100.0 if raw < -100.0 else (100.0 if raw > 100.0 else raw)

        if s > config.long_threshold:
            direction = LONG
        elif s < config.short_threshold:
            direction = SHORT
        else:
            direction = FLAT

        strength = abs(s)
        f = clean[MODULATOR]
        if f is not None and s != 0.0:
            f = self._modulator_sign * f
            agree = (f > 0) == (s > 0)
            factor = (
                1.0 + config.fund_lead_boost * abs(f) / 100.0 if agree else 1.0 - config.fund_lead_cut * abs(f) / 100.0
            )
            x = strength * factor
            strength = 0.0 if x <= 0.0 else (100.0 if x > 100.0 else x)  # max(0.0, min(100.0, x)): -0.0 reads 0.0

        gated: list[str] = []
        for key, gate in self._gates:
            v = clean[key]
            if v is not None and v < gate:
                gated.append(key)
                all_notes[key] = f"{key}={v:.1f} below gate {gate:g}"
        if gated:
            direction = FLAT

        if total_w == 0:
            all_notes.setdefault("score", "no weighted factor available: score 0, FLAT")
        # ScoreResult is a frozen dataclass: its __init__ sets each of the eleven fields through
        # object.__setattr__, which cost more than the rest of the score together; here they are set in one step.
        result = object.__new__(ScoreResult)
        result.__dict__.update(
            direction=direction,
            strength=strength,
            score=s,
            contributions=contributions,
            values=clean,
            available=tuple(available),
            missing=tuple(missing),
            instrument_id=instrument_id,
            ts_ns=ts_ns,
            gated=tuple(gated),
            notes=all_notes,
        )
        return result


def score(
    values: Mapping[str, float | None],
    config: FactorConfig,
    instrument_id: str | None = None,
    ts_ns: int | None = None,
    notes: Mapping[str, str] | None = None,
) -> ScoreResult:
    """Combine factor values (None = not available) into a ScoreResult. See docs/factors.md, "Combining"."""
    return ScoreModel(config).score(values, instrument_id, ts_ns, notes)


def rank(results: list[ScoreResult]) -> list[ScoreResult]:
    """Best first: signals before FLAT, then by strength, then by |score|; ties by instrument id for
    stability."""
    return sorted(results, key=lambda r: (r.direction == FLAT, -r.strength, -abs(r.score), r.instrument_id or ""))
