"""How the reader's findings become one answer and a confidence a person can read.

Four fitted pieces, stored with the reader (reader.json, written by `python -m qa.training.calibrate`):
- `rank`: weights over a window's signals (reader margin, retrieval score) that pick the answer;
- `weights`: a logistic model of "the chosen span is right", giving `score` in [0, 1];
- `threshold` below which the assistant abstains, and the cut-offs of the plain labels;
- `windows`: how many windows the reader reads per question.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache

from . import config

LABELS = ("confident", "likely", "unsure")


@dataclass(frozen=True)
class Calibration:
    rank: dict[str, float] = field(default_factory=lambda: {"margin": 1.0, "retrieval": 1.0})
    weights: dict[str, float] = field(default_factory=lambda: {"bias": 0.0, "margin": 0.5})
    threshold: float = 0.5
    #: lowest score of each label; below the last one an answer is "unsure"
    cutoffs: dict[str, float] = field(default_factory=lambda: {"confident": 0.8, "likely": 0.5})
    windows: int = config.N_WINDOWS
    fitted_on: str = "defaults (not fitted)"

    @classmethod
    def from_dict(cls, d: dict | None) -> "Calibration":
        if not d:
            return cls()
        known = {k: d[k] for k in ("rank", "weights", "threshold", "cutoffs", "windows", "fitted_on") if k in d}
        return cls(**known)

    def to_dict(self) -> dict:
        return asdict(self)

    def rank_score(self, features: dict[str, float]) -> float:
        """Which window's span answers: the reader's margin weighed with how well retrieval ranked the window."""
        return sum(w * features.get(k, 0.0) for k, w in self.rank.items())

    def probability(self, features: dict[str, float]) -> float:
        """Calibrated probability that the chosen span is a right answer."""
        z = self.weights.get("bias", 0.0) + sum(w * features.get(k, 0.0) for k, w in self.weights.items() if k != "bias")
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))

    def label(self, score: float) -> str:
        """A plain word for the score: what share of answers at that score were right on held-out data."""
        for name in LABELS[:-1]:
            if score >= self.cutoffs.get(name, 1.1):
                return name
        return LABELS[-1]


@lru_cache(maxsize=1)
def shipped() -> Calibration:
    """The shipped reader's calibration (read from its reader.json, no model loaded); defaults if unreadable."""
    from .reader import ReaderError, read_meta

    try:
        return Calibration.from_dict(read_meta(config.READER_DIR).get("calibration"))
    except ReaderError:
        return Calibration()


def label(score: float) -> str:
    """`score` as the shipped reader's plain word: confident, likely or unsure."""
    return shipped().label(score)
