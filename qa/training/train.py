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
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from index.store import file_sha256

from .. import config


#: the round the shipped reader had last: natural queries (QED), the pool, SubjQA's vague and unanswerable
#: questions and SquadShifts, about 14,000 questions in groups of 4 windows (about 70 min on 2 CPU cores)
DEFAULT_MIX = ("pool=4000,qed=4000,subjqa=2000,squadshifts_wiki=1200,squadshifts_reddit=1000,squadshifts_amazon=1000,"
               "covidqa=400")
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


#: training speed measured on this 2-core CPU (bf16 autocast), for the ETA printed before a run
WINDOWS_PER_SECOND = 14


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
    #: which units are held out (kept apart from `seed`, so that a later round samples other questions while
    #: holding out, and calibrating on, the same units as the round it continues from)
    holdout_seed: int = 13
    #: how the pool is read: "paragraphs" (whole SQuAD paragraphs, as the first rounds), or "windows"
    #: (what the product reads: a sentence with its neighbours, one holding the answer and one not, per
    #: question) mixed with `paragraph_share` of the paragraphs
    data: str = "paragraphs"
    paragraph_share: float = 1.0
    hard_negatives: int = 0  # with "windows": per answerable question, windows of the article's other paragraphs
    #: with "groups": questions per source ("source=count,..."; a source left out is not used) and whole
    #: units (articles) of each source held out to calibrate on; `group_size` windows read per question
    mix: str = DEFAULT_MIX
    holdout: str = DEFAULT_HOLDOUT
    group_size: int = 4
    negative_share: float = 0.15
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
    if settings.data == "groups":
        grouped, held_ex = group_material(settings, Path(pool).parent)
        feats = length_grouped(group_features(tokenizer, grouped, settings.max_length), settings.batch_size,
                               settings.seed)
        n_windows = sum(len(f["input_ids"]) for f in feats)
        held_units: dict[str, list[str]] = {}
        for e in held_ex:
            held_units.setdefault(e.source, [])
            if e.unit not in held_units[e.source]:
                held_units[e.source].append(e.unit)
        n_questions, held_titles = len(feats), sorted(held_units.get("pool", []))
        print(f"{len(feats)} groups, {n_windows} windows; held out: "
              + ", ".join(f"{k} {len(v)}" for k, v in held_units.items()), file=sys.stderr)
    else:
        train_articles, held = split_articles(load_pool(pool), settings.holdout_articles, settings.seed)
        records = examples(train_articles)
        random.Random(settings.seed).shuffle(records)
        if settings.limit:
            records = records[:settings.limit]
        feats = features(tokenizer, training_records(records, settings), settings.max_length, settings.stride)
        n_windows, n_questions, held_titles, held_units = len(feats), len(records), sorted(a["title"] for a in held), {}
        print(f"{len(records)} questions from {len(train_articles)} articles ({settings.data}) -> {len(feats)} windows "
              f"(held out: {', '.join(held_titles)})", file=sys.stderr)

    model = AutoModelForQuestionAnswering.from_pretrained(str(base_model_path()))
    history = []
    if init is not None:
        from safetensors.torch import load_file

        model.load_state_dict({k: v.float() for k, v in load_file(str(Path(init) / config.READER_WEIGHTS)).items()},
                              strict=False)
        prev = json.loads((Path(init) / config.READER_META).read_text(encoding="utf-8"))
        # on the same data, a round must hold out what the round it continues from held out: training on those
        # units would leave nothing unseen to calibrate on
        same_data = prev.get("pool_sha256") == file_sha256(pool)
        as_sets = lambda units: {k: set(v) for k, v in units.items()}  # noqa: E731
        earlier_held = as_sets(prev.get("held_out_units") or held_units)
        if settings.data == "groups" and same_data and earlier_held != as_sets(held_units):
            raise SystemExit(f"error: {init} held out other units than this run would; keep --holdout and "
                             "--holdout-seed as that round had them.")
        history = prev.get("history", []) + [{k: prev.get(k) for k in ("settings", "train_seconds_this_run",
                                                                        "final_loss", "device", "sha256")}]
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)  # shared with the embedding model
    args = TrainingArguments(
        output_dir=str(work_dir), num_train_epochs=settings.epochs, max_steps=settings.max_steps,
        learning_rate=settings.learning_rate, per_device_train_batch_size=settings.batch_size,
        warmup_steps=settings.warmup_ratio, weight_decay=settings.weight_decay, lr_scheduler_type="linear",
        bf16=cuda or _cpu_has_bf16(), use_cpu=not cuda,
        # groups come in length-grouped order already (length_grouped); windows are grouped by Trainer
        train_sampling_strategy="sequential" if settings.data == "groups" else "group_by_length",
        remove_unused_columns=settings.data != "groups",
        save_strategy="steps", save_steps=100, save_total_limit=2, logging_steps=25, report_to="none",
        seed=settings.seed, data_seed=settings.seed + len(history),  # another round sees another order
        dataloader_num_workers=0, disable_tqdm=False)
    if settings.data == "groups":
        trainer = _group_trainer(Trainer)(model=model, args=args, train_dataset=feats, processing_class=tokenizer,
                                          data_collator=GroupCollator(tokenizer))
    else:
        trainer = Trainer(model=model, args=args, train_dataset=feats, processing_class=tokenizer,
                          data_collator=DataCollatorWithPadding(tokenizer))
    steps = args.max_steps if args.max_steps > 0 else math.ceil(len(feats) / settings.batch_size * settings.epochs)
    windows_per_item = n_windows / max(len(feats), 1)  # 1 for windows, the group size for groups
    eta_minutes = steps * settings.batch_size * windows_per_item / WINDOWS_PER_SECOND / 60
    print(f"{steps} steps of {settings.batch_size} ({'groups' if settings.data == 'groups' else 'windows'}); at about "
          f"{WINDOWS_PER_SECOND} windows/s on this CPU: ETA {eta_minutes:.0f} min",
          file=sys.stderr)
    resume = any(work_dir.glob("checkpoint-*")) if work_dir.exists() else False
    t0 = time.time()
    trainer.train(resume_from_checkpoint=resume or None)
    meta = {"settings": asdict(settings), "pool_sha256": file_sha256(pool), "train_questions": n_questions,
            "train_windows": n_windows, "held_out_articles": held_titles, "held_out_units": held_units,
            "train_seconds_this_run": round(time.time() - t0), "device": "cuda" if cuda else "cpu",
            "final_loss": next((h["loss"] for h in reversed(trainer.state.log_history) if "loss" in h), None),
            "history": history}
    return export_reader(trainer.model, out_dir, meta)


# -- training on groups (shared normalisation) ----------------------------------------
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
                    "token_type_ids": [enc["token_type_ids"][r] for r in rows],
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
    end at (the passage's word pieces and each window's [CLS], the no-answer option)."""

    def __init__(self, tokenizer):
        self.pad, self.sep = tokenizer.pad_token_id, tokenizer.sep_token_id

    def __call__(self, items: list[dict]) -> dict:
        import torch

        k = max(len(it["input_ids"]) for it in items)
        length = max(len(ids) for it in items for ids in it["input_ids"])
        n = len(items) * k
        ids = torch.full((n, length), self.pad)
        types = torch.zeros((n, length), dtype=torch.long)
        present = torch.zeros(n, dtype=torch.bool)  # a real window (groups may hold fewer than k)
        for g, it in enumerate(items):
            for j, (a, t) in enumerate(zip(it["input_ids"], it["token_type_ids"])):
                ids[g * k + j, :len(a)], types[g * k + j, :len(t)] = torch.tensor(a), torch.tensor(t)
                present[g * k + j] = True
        mask = ids != self.pad
        valid = (types == 1) & (ids != self.sep) & mask
        valid[:, 0] = present
        return {"input_ids": ids, "attention_mask": mask.long(), "token_type_ids": types, "valid": valid,
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


def _group_trainer(Trainer):
    class GroupTrainer(Trainer):
        """Trainer whose loss is the shared-normalisation loss over each question's group of windows."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = {k: inputs.pop(k) for k in ("valid", "answer_window", "answer_start", "answer_end")}
            out = model(**inputs)
            loss = shared_loss(out.start_logits, out.end_logits, labels)
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
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--seed", type=int, default=d.seed, help="the order, the questions sampled and the groups")
    p.add_argument("--holdout-seed", type=int, default=d.holdout_seed, help="which units are held out")
    p.add_argument("--max-steps", type=int, default=d.max_steps)
    p.add_argument("--limit", type=int, default=d.limit, help="train on only N questions (smoke runs)")
    p.add_argument("--data", choices=("paragraphs", "windows", "groups"), default=d.data,
                   help="whole paragraphs, the product's sentence windows mixed with --paragraph-share of them, or "
                        "groups: each question with the windows retrieval brings up, one softmax over them all")
    p.add_argument("--mix", default=d.mix, help="with --data groups: questions per source, as source=count,...")
    p.add_argument("--holdout", default=d.holdout, help="with --data groups: units held out per source")
    p.add_argument("--group-size", type=int, default=d.group_size, help="with --data groups: windows per question")
    p.add_argument("--negative-share", type=float, default=d.negative_share,
                   help="with --data groups: share of answerable questions grouped without their answer window")
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
                             hard_negatives=args.hard_negatives, mix=args.mix, holdout=args.holdout,
                             group_size=args.group_size, holdout_seed=args.holdout_seed,
                             negative_share=args.negative_share)
    out = train(settings, args.pool, args.out, args.work, args.device, args.init)
    print(f"reader written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
