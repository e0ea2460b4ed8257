"""What the assistant returns: an Answer with its ranked Sources."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Source:
    """A retrieved passage (chunk) with its release and retrieval score in [0, 1]."""

    release_id: str
    title: str
    date: str | None
    text: str  # the chunk's text, verbatim
    score: float
    start: int  # offsets of `text` inside the release's text
    end: int
    path: str = ""
    url: str = ""  # the release's web address (a fetched or saved page), "" when unknown


@dataclass(frozen=True)
class Answer:
    """An extractive answer: `text` is release_text[start:end] of sources[0]'s release.

    `answered` is False when the corpus does not answer the question; then `text` is ""
    and `sources` hold the closest passages. `label` is `score` as a word (calibration.label).
    """

    question: str
    text: str
    evidence: str  # the sentence(s) holding the answer, verbatim
    answered: bool
    score: float  # calibrated confidence in [0, 1]
    sources: list[Source] = field(default_factory=list)
    release_id: str | None = None  # release the answer came from
    start: int | None = None  # offsets of `text` in that release's text
    end: int | None = None
    evidence_start: int | None = None  # offsets of `evidence` in that release's text
    evidence_end: int | None = None
    message: str = ""  # a plain-language note (why it abstained, what was wrong with the input)
    label: str = ""  # `score` in a word a person reads right: confident, likely or unsure
    generation: str = ""  # the index generation it was read from (Assistant.release shows the text it had)

    def __post_init__(self) -> None:
        if not self.label:  # one rule for every answer: the shipped calibration's (an assistant passes its own)
            from .calibration import label

            object.__setattr__(self, "label", label(self.score))

    def to_dict(self) -> dict:
        """JSON-ready form (used by the CLI and the web API)."""
        return asdict(self)
