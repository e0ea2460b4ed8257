"""Fine-tune the reader: LoRA adapters on the all-mpnet-base-v2 encoder, trained for extractive QA.

    python -m qa.training.train                      # the shipped reader's round (resumes from .train/ if interrupted)
    python -m qa.training.train --max-steps 5 --limit 8 --out /tmp/reader   # a smoke run

SQuAD 2.0-style spans with shared normalisation (Clark & Gardner 2018): each question is read with
the windows retrieval brings up for it, and one softmax runs over every window's word pieces and its
[CLS] no-answer option, so scores compare across windows and a question has one no-answer score.
Data: the training pool and ../shared/data/extra/ (never the dev files); whole units of every source are
held out, to calibrate on (`python -m qa.training.calibrate`). Only LoRA adapters, the LayerNorms and
the span head are trained, so the shipped reader is a few MB on top of the installed base.
On CUDA when present (bf16); on a CPU, rounds continue from the committed reader (`--init`).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from index.files import file_sha256

from .. import config


#: the shipped reader's round: the pool, natural search queries (QED), SubjQA's vague and unanswerable questions,
#: SquadShifts and COVID-QA, 10,900 questions in groups of 4 windows, of which 1,800 steps of 4 (about 28,800
#: windows, 80-90 min on 2 CPU cores) are trained
DEFAULT_MIX = ("pool=3000,qed=3500,subjqa=1500,squadshifts_wiki=1000,squadshifts_reddit=800,squadshifts_amazon=800,"
               "covidqa=300")
DEFAULT_HOLDOUT = "pool=5,qed=250,subjqa=50,squadshifts_wiki=1,squadshifts_reddit=40,squadshifts_amazon=8"


def parse_counts(text: str) -> dict[str, int]:
    """"a=1,b=2" -> {"a": 1, "b": 2}, names checked against the known sources."""
    from .data import SOURCES

    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, n = part.partition("=")
        if name not in SOURCES:
            raise ValueError(f"unknown source {name!r}: one of {', '.join(SOURCES)}")
        out[name] = int(n)
    return out


#: training speed measured on this 2-core CPU (bf16 autocast, LoRA on the 12-layer base), for the printed ETA
WINDOWS_PER_SECOND = {"cpu": 6, "cuda": 800}


@dataclass(frozen=True)
class TrainSettings:
    """Everything that decides the trained weights; recorded in the model card."""

    epochs: float = 1.0
    learning_rate: float = 3e-4
    batch_size: int = 4  # groups (questions) per step
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    max_length: int = config.READER_MAX_LENGTH
    seed: int = 13
    #: which units are held out (kept apart from `seed`, so that a later round samples other questions while
    #: holding out, and calibrating on, the same units as the round it continues from)
    holdout_seed: int = 13
    #: questions per source ("source=count,..."; a source left out is not used) and whole units (articles)
    #: of each source held out to calibrate on; `group_size` windows read per question
    mix: str = DEFAULT_MIX
    holdout: str = DEFAULT_HOLDOUT
    group_size: int = 4
    negative_share: float = 0.15
    #: "shared": one softmax over a question's windows (shipped); "window": each window its own softmax, its
    #: [CLS] the target where the answer is elsewhere or absent (run_qa.py's objective, kept to compare)
    objective: str = "shared"
    #: LoRA rank and scale; adapters on every linear layer of the 12 blocks (config.LORA_TARGETS). Rank 0: no
    #: adapters, every weight trains (full fine-tuning, to compare: its 220 MB in fp16 are not for git)
    lora_rank: int = 16
    lora_alpha: int = 32
    max_steps: int = 1800  # > 0: stop after this many optimiser steps (the schedule decays to zero there)
    limit: int = 0  # > 0: use only this many training questions per source (smoke runs)


# -- training ----------------------------------------------------------------------
def trainable_model(settings: TrainSettings, init: Path | None = None):
    """The base encoder with a span head and LoRA adapters (fresh, or `init`'s to continue from); the
    adapters, the LayerNorms and the span head are what trains. At rank 0, the whole encoder trains."""
    from peft import LoraConfig, PeftModel, get_peft_model

    from ..base import qa_model

    model = qa_model()
    if not settings.lora_rank:
        return model
    grown_from = None
    if init is not None:
        grown_from = LoraConfig.from_pretrained(str(init))  # peft's adapter_config.json
        if grown_from.r > settings.lora_rank:
            raise SystemExit(f"error: {init} has rank {grown_from.r}; a round continues at that rank or a higher one.")
        if grown_from.r == settings.lora_rank:
            return PeftModel.from_pretrained(model, str(init), is_trainable=True)
    model = get_peft_model(model, LoraConfig(r=settings.lora_rank, lora_alpha=settings.lora_alpha, lora_dropout=0.05,
                                             target_modules=list(config.LORA_TARGETS),
                                             modules_to_save=list(config.LORA_ALSO_TRAINED)))
    if grown_from is not None:
        grow_from(model, Path(init), grown_from.lora_alpha / grown_from.r)
    return model


def grow_from(model, init: Path, init_scale: float) -> None:
    """Start a higher-rank LoRA model as `init`'s lower-rank reader: its adapters (scaled by `init_scale`, their
    alpha/r) fill the first ranks, rescaled to the model's alpha/r; the new ranks keep B = 0; its span head and
    LayerNorms are copied. So the model answers exactly as `init` does before the first step."""
    from peft import get_peft_model_state_dict, set_peft_model_state_dict
    from safetensors.torch import load_file

    lora = model.peft_config["default"]
    rescale = init_scale / (lora.lora_alpha / lora.r)
    state = get_peft_model_state_dict(model)  # the fresh model's, in the saved layout: A random, B = 0
    for key, value in load_file(str(init / config.READER_WEIGHTS)).items():
        if ".lora_A." in key:
            state[key][: value.shape[0]] = value
        elif ".lora_B." in key:
            state[key][:, : value.shape[1]] = value * rescale
        else:  # the span head and the LayerNorms
            state[key] = value
    unfit = set_peft_model_state_dict(model, state).unexpected_keys
    if unfit:
        raise SystemExit(f"error: {init}'s adapters do not fit this model ({unfit[0]} ...).")


def held_units_of(held_ex) -> dict[str, list[str]]:
    """source -> the units held out of it, in order."""
    units: dict[str, list[str]] = {}
    for e in held_ex:
        units.setdefault(e.source, [])
        if e.unit not in units[e.source]:
            units[e.source].append(e.unit)
    return units


def train(settings: TrainSettings, pool: Path, out_dir: Path, work_dir: Path, device: str = "auto",
          init: Path | None = None, groups_file: Path | None = None) -> Path:
    """Fine-tune, checkpointing into `work_dir` (resumed when present), and export the reader to `out_dir`.

    `init`: a reader folder whose adapters to continue from (another round) instead of fresh ones.
    `groups_file`: train on the groups `--save-groups` wrote (no sources needed) instead of building them."""
    from ..base import load_tokenizer
    from ..reader import export_reader

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from transformers import Trainer, TrainingArguments, set_seed

    set_seed(settings.seed)
    cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    tokenizer = load_tokenizer()
    settings, grouped, held_units, pool_sha = material(settings, pool, groups_file)
    feats = length_grouped(group_features(tokenizer, grouped, settings.max_length), settings.batch_size,
                           settings.seed)
    n_windows = sum(len(f["input_ids"]) for f in feats)
    print(f"{len(feats)} groups, {n_windows} windows; held out: "
          + ", ".join(f"{k} {len(v)}" for k, v in held_units.items()), file=sys.stderr)

    history = []
    if init is not None:
        prev = json.loads((Path(init) / config.READER_META).read_text(encoding="utf-8"))
        # a round must hold out what the round it continues from held out: training on those units would
        # leave nothing unseen to calibrate on
        as_sets = lambda units: {k: set(v) for k, v in units.items()}  # noqa: E731
        if prev.get("pool_sha256") == pool_sha and as_sets(prev.get("held_out_units") or held_units) \
                != as_sets(held_units):
            raise SystemExit(f"error: {init} held out other units than this run would; keep --holdout and "
                             "--holdout-seed as that round had them.")
        history = prev.get("history", []) + [{k: prev.get(k) for k in ("settings", "train_seconds_this_run",
                                                                        "train_windows", "final_loss", "device",
                                                                        "sha256")}]
    model = trainable_model(settings, init)
    args = TrainingArguments(
        output_dir=str(work_dir), num_train_epochs=settings.epochs, max_steps=settings.max_steps,
        learning_rate=settings.learning_rate, per_device_train_batch_size=settings.batch_size,
        warmup_steps=settings.warmup_ratio, weight_decay=settings.weight_decay, lr_scheduler_type="linear",
        bf16=cuda or _cpu_has_bf16(), use_cpu=not cuda,
        # groups come in length-grouped order already (length_grouped)
        train_sampling_strategy="sequential", remove_unused_columns=False,
        save_strategy="steps", save_steps=50, save_total_limit=2, logging_steps=25, report_to="none",
        seed=settings.seed, data_seed=settings.seed + len(history),  # another round sees another order
        dataloader_num_workers=0, disable_tqdm=False)
    trainer = _group_trainer(Trainer, settings.objective)(model=model, args=args, train_dataset=feats, processing_class=tokenizer,
                                      data_collator=GroupCollator(tokenizer))
    steps = args.max_steps if args.max_steps > 0 else math.ceil(len(feats) / settings.batch_size * settings.epochs)
    windows_per_group = n_windows / max(len(feats), 1)
    speed = WINDOWS_PER_SECOND["cuda" if cuda else "cpu"]
    eta_minutes = steps * settings.batch_size * windows_per_group / speed / 60
    print(f"{steps} steps of {settings.batch_size} groups; at about {speed} windows/s: ETA {eta_minutes:.0f} min",
          file=sys.stderr)
    resume = any(work_dir.glob("checkpoint-*")) if work_dir.exists() else False
    t0 = time.time()
    trainer.train(resume_from_checkpoint=resume or None)
    done = trainer.state.global_step
    meta = {"settings": asdict(settings), "pool_sha256": pool_sha, "train_questions": len(feats),
            "train_windows": round(done * settings.batch_size * windows_per_group),
            "held_out_units": held_units, "train_seconds_this_run": round(time.time() - t0),
            "device": "cuda" if cuda else "cpu",
            "final_loss": next((h["loss"] for h in reversed(trainer.state.log_history) if "loss" in h), None),
            "history": history}
    return export_reader(trainer.model, out_dir, meta)


# -- training on groups (shared normalisation) ----------------------------------------
#: the settings that decide which groups are built: a groups file records them, and a run on it takes them
DATA_SETTINGS = ("mix", "holdout", "holdout_seed", "seed", "group_size", "negative_share", "limit")


def material(settings: TrainSettings, pool: Path, groups_file: Path | None = None):
    """(settings, groups, held-out units, the pool's sha256): built from the sources, or read from a groups file
    (whose data settings then replace those of `settings`)."""
    from .data import load_groups

    if groups_file is None:
        grouped, held_ex = group_material(settings, Path(pool).parent)
        return settings, grouped, held_units_of(held_ex), file_sha256(pool)
    header, grouped = load_groups(groups_file)
    return replace(settings, **header["settings"]), grouped, header["held_out_units"], header["pool_sha256"]


def save_material(settings: TrainSettings, pool: Path, path: Path) -> Path:
    """Build the groups `settings` train on and write them, with what a run on them records, to `path`."""
    from .data import save_groups

    settings, grouped, held_units, pool_sha = material(settings, pool)
    header = {"settings": {k: getattr(settings, k) for k in DATA_SETTINGS}, "held_out_units": held_units,
              "pool_sha256": pool_sha}
    return save_groups(path, grouped, header)


def group_material(settings: TrainSettings, data_dir: Path | None = None):
    """(groups to train on, held-out examples): per source of `settings.mix`, its units held out first, then
    `count` questions sampled from the rest and grouped with their distractor windows."""
    from .data import groups, load_examples, split

    mix, holdout = parse_counts(settings.mix), parse_counts(settings.holdout)
    out, held = [], []
    for name in sorted(set(mix) | set(holdout)):
        train_ex, held_ex = split(load_examples(name, data_dir), holdout.get(name, 0), settings.holdout_seed)
        held += held_ex
        n = mix.get(name, 0)
        if settings.limit:
            n = min(n, settings.limit)
        if not n:
            continue
        rng = random.Random(settings.seed)
        pick = rng.sample(train_ex, min(n, len(train_ex)))
        # distractors come from the whole training side of the source, as retrieval searches a whole corpus
        gs = groups(pick, settings.group_size, settings.seed, settings.negative_share,
                    corpus=sorted({e.context for e in train_ex}) if not settings.limit else None)
        print(f"{name}: {len(gs)} groups from {len(pick)} of {len(train_ex)} questions "
              f"({sum(g.answer < 0 for g in gs)} without an answer); {len(held_ex)} held out", file=sys.stderr)
        out += gs
    return out, held


def group_features(tokenizer, groups, max_length: int) -> list[dict]:
    """Each group as its windows' encodings and where its answer starts and ends (window, word piece);
    a group whose answer is cut off by `max_length` is dropped."""
    flat = [(g.question, w) for g in groups for w in g.windows]
    enc = tokenizer([q for q, _ in flat], [w.text for _, w in flat], truncation="only_second",
                    max_length=max_length, return_offsets_mapping=True, padding=False)
    out, i = [], 0
    for g in groups:
        rows = range(i, i + len(g.windows))
        i += len(g.windows)
        start = end = 0
        if g.answer >= 0:
            r = rows[g.answer]
            w = g.windows[g.answer]
            a0, a1 = w.start, w.start + len(w.answer)
            offsets, seq = enc["offset_mapping"][r], enc.sequence_ids(r)
            ctx = [k for k, s in enumerate(seq) if s == 1]
            if not ctx or offsets[ctx[-1]][1] < a1:
                continue
            start = next(k for k in ctx if offsets[k][1] > a0)
            end = next(k for k in reversed(ctx) if offsets[k][0] < a1)
        out.append({"input_ids": [enc["input_ids"][r] for r in rows],
                    # where an answer may start or end: the passage's word pieces (MPNet has no segment ids)
                    "passage": [[s == 1 for s in enc.sequence_ids(r)] for r in rows],
                    "answer_window": g.answer, "answer_start": start, "answer_end": end})
    return out


def length_grouped(items: list[dict], batch_size: int, seed: int, mega: int = 50) -> list[dict]:
    """`items` in an order whose consecutive batches hold groups of similar length (less padding), the
    batches themselves shuffled: the order Trainer then reads sequentially (and resumes in)."""
    rng = random.Random(seed)
    items = items[:]
    rng.shuffle(items)
    longest = lambda it: max(map(len, it["input_ids"]))  # noqa: E731
    batches = []
    for i in range(0, len(items), batch_size * mega):
        chunk = sorted(items[i:i + batch_size * mega], key=longest, reverse=True)
        batches += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return [it for b in batches for it in b]


class GroupCollator:
    """Groups -> one padded batch of all their windows, with a mask of the positions an answer may start or
    end at (the passage's word pieces and each window's first piece, the no-answer option)."""

    def __init__(self, tokenizer):
        self.pad = tokenizer.pad_token_id

    def __call__(self, items: list[dict]) -> dict:
        import torch

        k = max(len(it["input_ids"]) for it in items)
        length = max(len(ids) for it in items for ids in it["input_ids"])
        n = len(items) * k
        ids = torch.full((n, length), self.pad)
        mask = torch.zeros((n, length), dtype=torch.long)
        valid = torch.zeros((n, length), dtype=torch.bool)
        for g, it in enumerate(items):
            for j, (a, passage) in enumerate(zip(it["input_ids"], it["passage"])):
                ids[g * k + j, :len(a)], mask[g * k + j, :len(a)] = torch.tensor(a), 1
                valid[g * k + j, :len(a)] = torch.tensor(passage)
                valid[g * k + j, 0] = True  # a real window's no-answer option (groups may hold fewer than k)
        return {"input_ids": ids, "attention_mask": mask, "valid": valid,
                "answer_window": torch.tensor([it["answer_window"] for it in items]),
                "answer_start": torch.tensor([it["answer_start"] for it in items]),
                "answer_end": torch.tensor([it["answer_end"] for it in items])}


def shared_loss(start_logits, end_logits, batch: dict):
    """Negative log-likelihood of each group's answer under one softmax over all its windows' positions: the
    answer's start (end) word piece, or for a group without one, the no-answer options of all its windows
    together (so the no-answer score of a question is the log-sum-exp of its windows' [CLS] scores)."""
    import torch

    g = len(batch["answer_window"])
    valid = batch["valid"].view(g, -1)
    length = batch["valid"].shape[1]
    cls = torch.zeros_like(valid)
    cls.view(g, -1, length)[:, :, 0] = batch["valid"].view(g, -1, length)[:, :, 0]
    loss = 0.0
    for logits, pos in ((start_logits, batch["answer_start"]), (end_logits, batch["answer_end"])):
        x = logits.float().view(g, -1).masked_fill(~valid, -1e4)
        z = torch.logsumexp(x, dim=1)
        a = batch["answer_window"]
        has = a >= 0
        target = torch.logsumexp(x.masked_fill(~cls, -1e4), dim=1)  # no answer: any window's [CLS]
        picked = x.gather(1, (a.clamp(min=0) * length + pos).unsqueeze(1)).squeeze(1)
        target = torch.where(has, picked, target)
        loss = loss + (z - target).mean()
    return loss / 2


def window_loss(start_logits, end_logits, batch: dict):
    """Negative log-likelihood of each window's own target under a softmax over that window alone: the
    answer's start (end) word piece in the window that holds it, [CLS] in every other window."""
    import torch

    g = len(batch["answer_window"])
    valid = batch["valid"]
    n, length = valid.shape
    window = torch.arange(n, device=valid.device) % (n // g)
    a = batch["answer_window"].repeat_interleave(n // g)
    keep = valid[:, 0]  # a padded window (a short group) counts for nothing
    loss = 0.0
    for logits, pos in ((start_logits, batch["answer_start"]), (end_logits, batch["answer_end"])):
        x = logits.float().view(n, length).masked_fill(~valid, -1e4)
        target = torch.where(window == a, pos.repeat_interleave(n // g), torch.zeros_like(a))
        nll = torch.logsumexp(x, dim=1) - x.gather(1, target.unsqueeze(1)).squeeze(1)
        loss = loss + nll[keep].mean()
    return loss / 2


LOSSES = {"shared": shared_loss, "window": window_loss}


def _group_trainer(Trainer, objective: str = "shared"):
    class GroupTrainer(Trainer):
        """Trainer whose loss is the shared-normalisation loss over each question's group of windows."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = {k: inputs.pop(k) for k in ("valid", "answer_window", "answer_start", "answer_end")}
            out = model(**inputs)
            loss = LOSSES[objective](out.start_logits, out.end_logits, labels)
            return (loss, out) if return_outputs else loss

    return GroupTrainer


def _cpu_has_bf16() -> bool:
    """bf16 autocast pays on CPUs with native bf16 dot products (avx512_bf16 / AMX); elsewhere it is slow."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def main(argv: list[str] | None = None) -> int:
    d = TrainSettings()
    p = argparse.ArgumentParser(prog="python -m qa.training.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--pool", type=Path, default=config.TRAIN_POOL, help="SQuAD 2.0-format training file")
    p.add_argument("--out", type=Path, default=config.READER_DIR, help="where the trained reader is written")
    p.add_argument("--work", type=Path, default=config.TRAIN_WORK_DIR, help="checkpoints (resumed when present)")
    p.add_argument("--epochs", type=float, default=d.epochs)
    p.add_argument("--lr", type=float, default=d.learning_rate)
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="groups (questions) per step")
    p.add_argument("--seed", type=int, default=d.seed, help="the order, the questions sampled and the groups")
    p.add_argument("--holdout-seed", type=int, default=d.holdout_seed, help="which units are held out")
    p.add_argument("--max-steps", type=int, default=d.max_steps)
    p.add_argument("--limit", type=int, default=d.limit, help="train on only N questions per source (smoke runs)")
    p.add_argument("--mix", default=d.mix, help="questions per source, as source=count,...")
    p.add_argument("--holdout", default=d.holdout, help="units held out per source")
    p.add_argument("--group-size", type=int, default=d.group_size, help="windows per question")
    p.add_argument("--negative-share", type=float, default=d.negative_share,
                   help="share of answerable questions grouped without their answer window")
    p.add_argument("--objective", choices=("shared", "window"), default=d.objective,
                   help="shared: one softmax over a question's windows; window: one per window (to compare)")
    p.add_argument("--lora-rank", type=int, default=d.lora_rank,
                   help="LoRA rank; 0: full fine-tuning (to compare; about 220 MB, not shipped)")
    p.add_argument("--lora-alpha", type=int, default=d.lora_alpha)
    p.add_argument("--warmup", type=float, default=d.warmup_ratio, help="share of the steps to warm up over")
    p.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu or cuda")
    p.add_argument("--save-groups", type=Path, default=None, metavar="FILE",
                   help="build the groups these settings train on, write them to FILE (.jsonl.xz) and stop")
    p.add_argument("--groups", type=Path, default=None, metavar="FILE",
                   help="train on the groups of FILE (written by --save-groups) instead of the sources")
    p.add_argument("--init", type=Path, default=None,
                   help="continue from this reader folder's adapters (use a fresh --work folder); with a higher "
                        "--lora-rank they fill its first ranks")
    args = p.parse_args(argv)
    if args.init is not None and not args.lora_rank:
        print("error: --init continues from LoRA adapters; full fine-tuning (--lora-rank 0) starts from the base.",
              file=sys.stderr)
        return 2
    if args.groups is not None and not args.groups.is_file():
        print(f"error: no groups file at {args.groups}; write one with --save-groups.", file=sys.stderr)
        return 2
    if args.groups is None and not args.pool.is_file():
        print(f"error: no training file at {args.pool}; pass --pool FILE (SQuAD 2.0 format).", file=sys.stderr)
        return 2
    settings = TrainSettings(epochs=args.epochs, learning_rate=args.lr, batch_size=args.batch_size, seed=args.seed,
                             max_steps=args.max_steps, limit=args.limit, warmup_ratio=args.warmup, mix=args.mix,
                             holdout=args.holdout, group_size=args.group_size, holdout_seed=args.holdout_seed,
                             negative_share=args.negative_share, lora_rank=args.lora_rank,
                             lora_alpha=args.lora_alpha, objective=args.objective)
    if args.save_groups is not None:
        print(f"groups written to {save_material(settings, args.pool, args.save_groups)}")
        return 0
    out = train(settings, args.pool, args.out, args.work, args.device, args.init, args.groups)
    print(f"reader written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
