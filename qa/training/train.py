"""Fine-tune the bundled all-MiniLM-L6-v2 encoder into the extractive reader.

    python -m qa.training.train                      # the full run (resumes from .train/ if interrupted)
    python -m qa.training.train --max-steps 5 --limit 40 --out /tmp/reader   # a smoke run

SQuAD 2.0-style: a start and an end logit per word piece of a window (question + passage);
the [CLS] position is the no-answer option. Data: the training pool (never the dev subsets);
a few of its articles are held out, to calibrate the reader's null score and how it is
combined with retrieval (`python -m qa.training.calibrate`). The word-piece embedding table is frozen,
so the shipped model shares it with the bundled embedding model and stays small.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from index.store import file_sha256

from .. import config


@dataclass(frozen=True)
class TrainSettings:
    """Everything that decides the trained weights; recorded in the model card."""

    epochs: float = 2.0
    learning_rate: float = 8e-5
    batch_size: int = 32
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_length: int = config.READER_MAX_LENGTH
    stride: int = config.READER_STRIDE
    holdout_articles: int = config.HOLDOUT_ARTICLES
    seed: int = 13
    #: how the pool is read: "paragraphs" (whole SQuAD paragraphs, as the first rounds), or "windows"
    #: (what the product reads: a sentence with its neighbours, one holding the answer and one not, per
    #: question) mixed with `paragraph_share` of the paragraphs
    data: str = "paragraphs"
    paragraph_share: float = 1.0
    hard_negatives: int = 0  # with "windows": per answerable question, windows of the article's other paragraphs
    max_steps: int = -1  # > 0: stop after this many optimiser steps (smoke runs)
    limit: int = 0  # > 0: use only this many training questions (smoke runs)


# -- data ----------------------------------------------------------------------
def load_pool(path: Path) -> list[dict]:
    """The SQuAD 2.0-format pool's articles."""
    return json.loads(Path(path).read_text(encoding="utf-8"))["data"]


def split_articles(articles: list[dict], holdout: int, seed: int) -> tuple[list[dict], list[dict]]:
    """(train, held out): whole articles, so that held-out questions are about unseen text."""
    titles = sorted(a["title"] for a in articles)
    held = set(random.Random(seed).sample(titles, min(holdout, len(titles) - 1))) if holdout else set()
    return [a for a in articles if a["title"] not in held], [a for a in articles if a["title"] in held]


def examples(articles: list[dict]) -> list[dict]:
    """Flat (question, context, answer) records; an unanswerable question has answer_start -1."""
    out = []
    for art in articles:
        for p in art["paragraphs"]:
            for q in p["qas"]:
                ans = [] if q.get("is_impossible") else q.get("answers", [])
                a = ans[0] if ans else None
                start = a["answer_start"] if a else -1
                if a and p["context"][start:start + len(a["text"])] != a["text"]:
                    start = p["context"].find(a["text"])  # the pool's offsets are first occurrences
                    if start < 0:
                        continue
                out.append({"question": " ".join(q["question"].split()), "context": p["context"],
                            "answer_start": start, "answer_text": a["text"] if a else "", "article": art["title"]})
    return out


def windows(records: list[dict], seed: int, hard_negatives: int = 0) -> list[dict]:
    """Records for the windows the product reads (`qa.windows.window_span` around each sentence, split as
    the index splits releases): per answerable question the window around its answer's sentence and one
    other window of the paragraph, labelled "no answer here"; per unanswerable question one window.
    This is the choice the reader makes at query time: which of a few windows holds the answer.

    `hard_negatives`: per answerable question, also that many windows of the article's other paragraphs
    that share the most words with the question (as retrieval would bring them), labelled no-answer."""
    from index.annotate import annotate

    from ..windows import window_span

    rng = random.Random(seed)
    contexts = sorted({r["context"] for r in records})
    sents = dict(zip(contexts, (a.sentences for a in annotate(contexts))))
    # context -> (start, end) of the window around each of its sentences
    spans = {ctx: [(rows[lo][0], rows[hi][1]) for lo, hi in (window_span(i, len(rows)) for i in range(len(rows)))]
             for ctx, rows in sents.items()}
    out = _hard_negatives(records, spans, hard_negatives, rng) if hard_negatives else []
    for r in records:
        wins = spans[r["context"]]
        if not wins:
            continue
        a0, a1 = r["answer_start"], r["answer_start"] + len(r["answer_text"])
        if a0 >= 0:
            hit = next((i for i, (s, e) in enumerate(sents[r["context"]]) if s < a1 and e > a0), None)
            if hit is None:
                continue
            w = wins[hit]
            if w[0] <= a0 and a1 <= w[1]:
                out.append(_window_record(r, w, a0 - w[0]))
            others = [w for w in wins if w[1] <= a0 or w[0] >= a1]
        else:
            others = wins
        if others:
            out.append(_window_record(r, rng.choice(others), -1))
    return out


def _window_record(r: dict, w: tuple[int, int], start: int) -> dict:
    """`r`'s question over the window `w` of its context; `start` is the answer's offset in it, -1 for none."""
    return {"question": r["question"], "context": r["context"][w[0]:w[1]], "answer_start": start,
            "answer_text": r["answer_text"] if start >= 0 else ""}


def _hard_negatives(records: list[dict], spans: dict[str, list[tuple[int, int]]], k: int,
                    rng: random.Random) -> list[dict]:
    """`k` no-answer windows per answerable question from the other paragraphs of its article, those sharing
    the most content words with the question (ties broken at random); none that holds the answer's text."""
    from ..question import STOPWORDS, words

    by_article: dict[str, dict[str, None]] = {}  # article -> its contexts, in order
    for r in records:
        by_article.setdefault(r.get("article", ""), {})[r["context"]] = None
    worded = {ctx: [(s, e, frozenset(words(ctx[s:e]))) for s, e in wins] for ctx, wins in spans.items()}
    out = []
    for r in records:
        if r["answer_start"] < 0:
            continue
        asked = {w for w in words(r["question"]) if w not in STOPWORDS}
        scored = [(len(asked & ws), rng.random(), ctx, s, e) for ctx in by_article.get(r.get("article", ""), ())
                  if ctx != r["context"] for s, e, ws in worded[ctx] if r["answer_text"] not in ctx[s:e]]
        for _, _, ctx, s, e in sorted(scored, reverse=True)[:k]:
            out.append({"question": r["question"], "context": ctx[s:e], "answer_start": -1, "answer_text": ""})
    return out


def training_records(records: list[dict], settings: TrainSettings) -> list[dict]:
    """The records a run trains on, by `settings.data` (see TrainSettings)."""
    if settings.data == "paragraphs":
        return records
    if settings.data != "windows":
        raise ValueError(f"unknown training data {settings.data!r}: paragraphs or windows")
    rng = random.Random(settings.seed + 1)
    keep = [r for r in records if rng.random() < settings.paragraph_share]
    out = windows(records, settings.seed, hard_negatives=settings.hard_negatives) + keep
    rng.shuffle(out)
    return out


def features(tokenizer, records: list[dict], max_length: int, stride: int) -> list[dict]:
    """Windows with start/end labels (0 = [CLS] = no answer in this window), as in HF's run_qa.py."""
    enc = tokenizer([r["question"] for r in records], [r["context"] for r in records], truncation="only_second",
                    max_length=max_length, stride=stride, return_overflowing_tokens=True,
                    return_offsets_mapping=True, padding=False)
    out = []
    for i, offsets in enumerate(enc["offset_mapping"]):
        r = records[enc["overflow_to_sample_mapping"][i]]
        seq = enc.sequence_ids(i)
        start_pos = end_pos = 0
        if r["answer_start"] >= 0:
            a0, a1 = r["answer_start"], r["answer_start"] + len(r["answer_text"])
            ctx = [k for k, s in enumerate(seq) if s == 1]
            if offsets[ctx[0]][0] <= a0 and offsets[ctx[-1]][1] >= a1:
                start_pos = next(k for k in ctx if offsets[k][1] > a0)
                end_pos = next(k for k in reversed(ctx) if offsets[k][0] < a1)
        out.append({"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                    "token_type_ids": enc["token_type_ids"][i], "start_positions": start_pos,
                    "end_positions": end_pos})
    return out


# -- training --------------------------------------------------------------------
def train(settings: TrainSettings, pool: Path, out_dir: Path, work_dir: Path, device: str = "auto",
          init: Path | None = None) -> Path:
    """Fine-tune, checkpointing into `work_dir` (resumed when present), and export the reader to `out_dir`.

    `init`: a reader folder to continue from (another round of training) instead of the bare encoder."""
    from ..reader import base_model_path, export_reader, load_tokenizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from transformers import (AutoModelForQuestionAnswering, DataCollatorWithPadding, Trainer, TrainingArguments,
                              set_seed)

    set_seed(settings.seed)
    cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    tokenizer = load_tokenizer()
    train_articles, held = split_articles(load_pool(pool), settings.holdout_articles, settings.seed)
    records = examples(train_articles)
    random.Random(settings.seed).shuffle(records)
    if settings.limit:
        records = records[:settings.limit]
    feats = features(tokenizer, training_records(records, settings), settings.max_length, settings.stride)
    print(f"{len(records)} questions from {len(train_articles)} articles ({settings.data}) -> {len(feats)} windows "
          f"(held out: {', '.join(sorted(a['title'] for a in held))})", file=sys.stderr)

    model = AutoModelForQuestionAnswering.from_pretrained(str(base_model_path()))
    history = []
    if init is not None:
        from safetensors.torch import load_file

        model.load_state_dict({k: v.float() for k, v in load_file(str(Path(init) / config.READER_WEIGHTS)).items()},
                              strict=False)
        prev = json.loads((Path(init) / config.READER_META).read_text(encoding="utf-8"))
        history = prev.get("history", []) + [{k: prev.get(k) for k in ("settings", "train_seconds_this_run",
                                                                        "final_loss", "device", "sha256")}]
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)  # shared with the embedding model
    args = TrainingArguments(
        output_dir=str(work_dir), num_train_epochs=settings.epochs, max_steps=settings.max_steps,
        learning_rate=settings.learning_rate, per_device_train_batch_size=settings.batch_size,
        warmup_steps=settings.warmup_ratio, weight_decay=settings.weight_decay, lr_scheduler_type="linear",
        bf16=cuda or _cpu_has_bf16(), use_cpu=not cuda, train_sampling_strategy="group_by_length",
        save_strategy="steps", save_steps=100, save_total_limit=2, logging_steps=25, report_to="none",
        seed=settings.seed, data_seed=settings.seed + len(history),  # another round sees another order
        dataloader_num_workers=0, disable_tqdm=False)
    trainer = Trainer(model=model, args=args, train_dataset=feats, processing_class=tokenizer,
                      data_collator=DataCollatorWithPadding(tokenizer))
    resume = any(work_dir.glob("checkpoint-*")) if work_dir.exists() else False
    t0 = time.time()
    trainer.train(resume_from_checkpoint=resume or None)
    meta = {"settings": asdict(settings), "pool_sha256": file_sha256(pool), "train_questions": len(records),
            "train_windows": len(feats), "held_out_articles": sorted(a["title"] for a in held),
            "train_seconds_this_run": round(time.time() - t0), "device": "cuda" if cuda else "cpu",
            "final_loss": next((h["loss"] for h in reversed(trainer.state.log_history) if "loss" in h), None),
            "history": history}
    return export_reader(trainer.model, out_dir, meta)


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
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--max-steps", type=int, default=d.max_steps)
    p.add_argument("--limit", type=int, default=d.limit, help="train on only N questions (smoke runs)")
    p.add_argument("--data", choices=("paragraphs", "windows"), default=d.data,
                   help="whole paragraphs, or the product's sentence windows mixed with --paragraph-share of them")
    p.add_argument("--paragraph-share", type=float, default=d.paragraph_share)
    p.add_argument("--hard-negatives", type=int, default=d.hard_negatives,
                   help="with --data windows: no-answer windows per question from the article's other paragraphs")
    p.add_argument("--warmup", type=float, default=d.warmup_ratio, help="share of the steps to warm up over")
    p.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu or cuda")
    p.add_argument("--init", type=Path, default=None,
                   help="continue training from this reader folder (use a fresh --work folder)")
    args = p.parse_args(argv)
    if not args.pool.is_file():
        print(f"error: no training file at {args.pool}; pass --pool FILE (SQuAD 2.0 format).", file=sys.stderr)
        return 2
    settings = TrainSettings(epochs=args.epochs, learning_rate=args.lr, batch_size=args.batch_size, seed=args.seed,
                             max_steps=args.max_steps, limit=args.limit, data=args.data,
                             paragraph_share=args.paragraph_share, warmup_ratio=args.warmup,
                             hard_negatives=args.hard_negatives)
    out = train(settings, args.pool, args.out, args.work, args.device, args.init)
    print(f"reader written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
