"""Bind a package's model reference to a live model, and check it before steering.

``model_ref(model, source=...)`` writes the manifest entry for a model; ``check_binding``
compares an entry with a model and raises ``InvalidError("model-mismatch")`` naming every
field that differs (or warns with ``strict=False``). Models loaded from GGUF have no Hub id
and no ``architectures`` list, so binding rests on ``model_type``, the dimensions and the
config digest:

``config_sha256`` = sha256 of the canonical JSON (``sort_keys=True``,
``separators=(",", ":")``, ``ensure_ascii=False``, UTF-8) of the object holding
``DIGEST_KEYS`` read from the model's (text) config with ``getattr``, keeping only keys
that are present and not None.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mindvec.errors import InvalidError, UsageError
from mindvec.loader.stacks import find_stacks

if TYPE_CHECKING:
    import torch

DIGEST_KEYS = (
    "model_type",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "intermediate_size",
    "vocab_size",
)
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*\Z")


class BindingWarning(UserWarning):
    """A package's model binding differs from the model, and ``strict=False`` allowed it."""


def text_config(model_or_config: Any) -> Any:
    """The config that describes the model's blocks (the text config of a multimodal model)."""
    config = getattr(model_or_config, "config", model_or_config)
    if config is None:
        raise UsageError("argument", "the model has no .config; pass a transformers PreTrainedModel")
    if getattr(config, "is_encoder_decoder", False):
        return config
    getter = getattr(config, "get_text_config", None)
    if callable(getter):
        try:
            return getter()
        except (TypeError, ValueError, AttributeError):
            return config
    return config


def digest_fields(model_or_config: Any) -> dict[str, Any]:
    """The config fields covered by ``config_sha256`` (present and not None)."""
    config = text_config(model_or_config)
    out: dict[str, Any] = {}
    for key in DIGEST_KEYS:
        try:
            value = getattr(config, key, None)
        except (AttributeError, KeyError, TypeError):
            value = None
        if value is not None:
            out[key] = value
    return out


def config_sha256(model_or_config: Any) -> bytes:
    """sha256 of the canonical JSON of :func:`digest_fields`."""
    text = json.dumps(
        digest_fields(model_or_config), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(text.encode("utf-8")).digest()


def model_ref(model: torch.nn.Module, *, source: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest ``models`` entry for ``model`` (``source`` as in the schema)."""
    config = text_config(model)
    stacks = find_stacks(model)
    entry: dict[str, Any] = {
        "model_type": str(config.model_type),
        "hidden_size": int(config.hidden_size),
        "num_layers": len(stacks.decoder),
        "config_sha256": config_sha256(config),
        "source": dict(source),
    }
    if stacks.encoder is not None:
        entry["num_encoder_layers"] = len(stacks.encoder)
    architectures = getattr(getattr(model, "config", None), "architectures", None)
    if architectures:
        entry["architecture"] = str(architectures[0])
    return entry


@dataclass(frozen=True)
class Difference:
    field: str
    package: Any
    model: Any  # the model's value of the field

    def __str__(self) -> str:
        p = self.package.hex() if isinstance(self.package, bytes) else self.package
        m = self.model.hex() if isinstance(self.model, bytes) else self.model
        return f"{self.field} (package {p!r}, model {m!r})"


def _get(ref: Any, key: str) -> Any:
    if isinstance(ref, Mapping):
        return ref.get(key)
    return getattr(ref, key, None)


def _same_type(a: str, b: str) -> bool:
    return a == b or a.removesuffix("_text") == b.removesuffix("_text")


def differences(model: torch.nn.Module, ref: Any) -> list[Difference]:
    """Every field of the model reference ``ref`` (dict or ModelRef) that the model contradicts."""
    config = text_config(model)
    stacks = find_stacks(model)
    diffs: list[Difference] = []
    mt = str(getattr(config, "model_type", ""))
    if not _same_type(str(_get(ref, "model_type")), mt):
        diffs.append(Difference("model_type", _get(ref, "model_type"), mt))
    hidden = getattr(config, "hidden_size", None)
    if _get(ref, "hidden_size") != hidden:
        diffs.append(Difference("hidden_size", _get(ref, "hidden_size"), hidden))
    if _get(ref, "num_layers") != len(stacks.decoder):
        diffs.append(Difference("num_layers", _get(ref, "num_layers"), len(stacks.decoder)))
    enc = None if stacks.encoder is None else len(stacks.encoder)
    if _get(ref, "num_encoder_layers") != enc:
        diffs.append(Difference("num_encoder_layers", _get(ref, "num_encoder_layers"), enc))
    arch = _get(ref, "architecture")
    archs = list(getattr(getattr(model, "config", None), "architectures", None) or [])
    if arch is not None and archs and arch not in archs:
        diffs.append(Difference("architecture", arch, archs[0]))
    digest = _get(ref, "config_sha256")
    if digest is not None and bytes(digest) != config_sha256(config):
        diffs.append(Difference("config_sha256", bytes(digest), config_sha256(config)))
    source = _get(ref, "source") or {}
    name = str(getattr(getattr(model, "config", None), "_name_or_path", "") or "")
    if source.get("kind") == "hf" and _HUB_ID.match(name) and name.lower() != str(source.get("repo")).lower():
        diffs.append(Difference("hub repo", source.get("repo"), name))
    return diffs


def check_binding(model: torch.nn.Module, model_ref: Any, strict: bool = True) -> list[Difference]:
    """Raise ``model-mismatch`` if ``model`` is not the model ``model_ref`` describes.

    With ``strict=False`` a mismatch only warns (``BindingWarning``). Returns the
    differences found (empty when the binding holds).
    """
    diffs = differences(model, model_ref)
    if diffs:
        name = _get(model_ref, "name")
        label = f"model {name!r}" if name else "its model"
        message = (
            f"the package is bound to {label}, which differs from this model in "
            + "; ".join(str(d) for d in diffs)
            + ". Load the model the package was made for, translate the vector to this model "
            "(mindvec.translate / via=), or pass strict=False to apply it anyway"
        )
        if strict:
            raise InvalidError("model-mismatch", message)
        warnings.warn(message, BindingWarning, stacklevel=3)
    return diffs
