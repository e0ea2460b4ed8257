"""A reader round on a lent GPU (the `device` tool's machine), prepared here and run there in a few calls.

That machine reaches nothing outside it, takes at most 64 MiB a call (the working tree included) and has
torch, transformers and peft but neither the training sources nor spaCy and BM25. So:

    python scripts/device_round.py pack [train flags]     # here: .device/ = the base as int8 pieces + the groups
    # there, one call per piece, back to back (the machine keeps its temporary folder while warm):
    python3 scripts/device_round.py stage                 # carry=[".device/base.part-00"], then part-01
    python3 scripts/device_round.py train [train flags]   # carry=[".device/groups.jsonl.xz"]: $OUT/reader

The base travels as int8 with one scale per row (about 105 MB); training starts from the de-quantised
weights (it worked in the trials of ../shared/reader-trials.md) and the adapters it writes are merged into
the verified base as ever. Then, here: `python -m qa.training.calibrate --reader DIR` and `make eval`.
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: what `pack` writes (git-ignored) and the pieces the base is cut into, each small enough for one call
PACK_DIR = ROOT / ".device"
PIECE_BYTES = 54 << 20
#: the base folder's files the reader needs beside its weights
BASE_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
#: where the machine keeps what earlier calls brought while it stays warm
STAGE_DIR = Path(os.environ.get("TMPDIR") or "/tmp") / "press-qa-device"
SCALE = ".__row_scale__"


def quantise(tensors: dict) -> dict:
    """Matrices as int8 with one fp32 scale per row; everything else as it is."""
    import torch

    out = {}
    for name, t in tensors.items():
        if t.is_floating_point() and t.dim() == 2:
            scale = (t.abs().amax(dim=1).float() / 127).clamp(min=1e-12)
            out[name] = torch.round(t / scale[:, None]).clamp(-127, 127).to(torch.int8)
            out[name + SCALE] = scale
        else:
            out[name] = t
    return out


def dequantise(tensors: dict) -> dict:
    import torch

    return {name: (t.float() * tensors[name + SCALE][:, None] if t.dtype == torch.int8 else t)
            for name, t in tensors.items() if not name.endswith(SCALE)}


def pack(train_flags: list[str]) -> None:
    from safetensors.torch import load_file, save

    from qa.base import base_model_path
    from qa.training import train

    base = base_model_path()
    PACK_DIR.mkdir(exist_ok=True)
    for old in PACK_DIR.glob("base.part-*"):
        old.unlink()
    blob = io.BytesIO()
    with tarfile.open(fileobj=blob, mode="w") as tar:
        for name in BASE_FILES:
            tar.add(base / name, arcname=name)
        weights = save(quantise(load_file(str(base / "model.safetensors"))))
        info = tarfile.TarInfo("model-int8.safetensors")
        info.size = len(weights)
        tar.addfile(info, io.BytesIO(weights))
    data = blob.getvalue()
    for i in range(0, len(data), PIECE_BYTES):
        (PACK_DIR / f"base.part-{i // PIECE_BYTES:02d}").write_bytes(data[i:i + PIECE_BYTES])
    code = train.main([*train_flags, "--save-groups", str(PACK_DIR / "groups.jsonl.xz")])
    for f in sorted(PACK_DIR.iterdir()):
        print(f"{f.relative_to(ROOT)}: {f.stat().st_size / 2**20:.1f} MiB")
    if code:
        raise SystemExit(code)


def stage() -> None:
    """Keep what this call carried (in .device/) for the calls after it."""
    STAGE_DIR.mkdir(parents=True, exist_ok=True)
    for f in sorted(PACK_DIR.glob("*")):
        shutil.copy2(f, STAGE_DIR / f.name)
    print("staged:", ", ".join(sorted(p.name for p in STAGE_DIR.iterdir())))


def base_folder() -> Path:
    """The base, joined from the staged pieces and de-quantised (once per machine)."""
    from safetensors.torch import load, save

    from index.files import write_atomic

    folder = STAGE_DIR / "base"
    if (folder / "model.safetensors").is_file():
        return folder
    pieces = sorted(STAGE_DIR.glob("base.part-*"))
    if not pieces:
        raise SystemExit("no base pieces staged: run `stage` with each .device/base.part-* carried first.")
    blob = b"".join(p.read_bytes() for p in pieces)
    folder.mkdir(exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        for name in BASE_FILES:
            (folder / name).write_bytes(tar.extractfile(name).read())
        weights = load(tar.extractfile("model-int8.safetensors").read())
    # written whole or not at all: a call cut off mid-write must not leave weights the next call trusts
    write_atomic(folder / "model.safetensors", save(dequantise(weights)))
    return folder


def train_there(train_flags: list[str]) -> int:
    """Train on the staged groups from the de-quantised base; the reader is written to $OUT/reader."""
    stage()
    folder = base_folder()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")  # that machine's 16 cores tokenise the groups
    import qa.base
    from qa.training import train

    # the de-quantised weights cannot carry the published sha256 that qa.base checks: trust this folder
    qa.base.base_model_path = lambda _folder=None: folder
    out = Path(os.environ.get("OUT") or STAGE_DIR / "out") / "reader"
    return train.main(["--groups", str(STAGE_DIR / "groups.jsonl.xz"), "--out", str(out),
                       "--work", str(STAGE_DIR / "work"), *train_flags])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/device_round.py", description=__doc__.split("\n\n")[0])
    p.add_argument("step", choices=("pack", "stage", "train"))
    args, rest = p.parse_known_args(argv)
    if args.step == "pack":
        pack(rest)
    elif args.step == "stage":
        stage()
    else:
        return train_there(rest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
