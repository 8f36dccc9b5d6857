"""The one-line producer API: ``train`` or ``extract`` a vector, then apply, save or push it.

For a steering-vectors user::

    vec = mindvec.fit.train(model, tokenizer, [("I love it", "I hate it"), ...], layers=[12])
    with vec.apply(model, scale=4.0):      # a SteeringHandle, as mindvec.steer returns
        model.generate(...)
    vec.save("love.mindvec", sign=key)     # a signed package
    vec.push("alice/love", sign=key)       # on the Hub

A :class:`Vector` is the package it would write, held in memory: ``apply`` steers through
exactly the code path ``mindvec.steer`` uses on the saved file, so what a user tried is what
they publish.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mindvec.builder import PackageBuilder
from mindvec.errors import UsageError
from mindvec.fit.build import Meta, dataset_entry, vector_package
from mindvec.fit.pairing import Tokenizer
from mindvec.fit.vectors import VectorFit
from mindvec.package import Signer

if TYPE_CHECKING:
    import torch

    from mindvec.loader.hooks import Positions
    from mindvec.loader.steer import SteeringHandle

SignArg = Signer | Iterable[Signer] | None


def _signers(sign: SignArg) -> tuple[Signer, ...]:
    if sign is None:
        return ()
    if hasattr(sign, "sign_manifest"):
        return (sign,)  # type: ignore[return-value]
    return tuple(sign)  # type: ignore[arg-type]


@dataclass
class Vector:
    """An extracted steering vector bound to its model, not yet written anywhere."""

    fit: VectorFit
    model_ref: dict[str, Any]
    meta: Meta
    dataset: dict[str, Any]
    name: str = "steer"
    seed: int = 0

    @property
    def layers(self) -> list[int]:
        return [int(s.site.layer) for s in self.fit.sites]

    def builder(self) -> PackageBuilder:
        """The package as a :class:`~mindvec.builder.PackageBuilder`, to add to before writing."""
        return vector_package(
            self.fit,
            "model",
            self.model_ref,
            self.meta,
            vector_name=self.name,
            dataset=self.dataset,
            seed=self.seed,
        )

    def save(self, path: str | os.PathLike[str], *, sign: SignArg = None) -> Path:
        """Write the package atomically; ``sign``: a key (or several) to sign it with."""
        return self.builder().write(path, signers=_signers(sign))

    def apply(
        self,
        model: torch.nn.Module,
        *,
        scale: float | None = None,
        layers: Sequence[int] | None = None,
        positions: Positions | None = None,
        strict: bool = True,
    ) -> SteeringHandle:
        """Steer ``model`` with this vector; returns the handle (a context manager).

        The vector never left this process, so it needs no signature: it is written to a
        private temporary file and steered from there exactly as ``mindvec.steer`` steers a
        downloaded package, binding check included.
        """
        from mindvec.loader.steer import steer
        from mindvec.policy import Policy

        with tempfile.TemporaryDirectory(prefix="mindvec-vector-") as folder:
            path = self.save(Path(folder) / "vector.mindvec")
            return steer(
                model,
                path,
                scale=scale,
                layers=layers,
                positions=positions,
                strict=strict,
                policy=Policy(allow_unsigned=True),
            )

    def push(self, repo_id: str, *, sign: SignArg, **options: Any) -> str:
        """Save, sign and publish on the Hub (``mindvec.hub.push``); returns the commit URL."""
        from mindvec.hub import push

        signers = _signers(sign)
        if not signers:
            raise UsageError("argument", "push needs sign=<key>: the Hub client publishes signed packages")
        keys = [getattr(s, "public_key", None) for s in signers]
        if any(key is None for key in keys):
            raise UsageError("argument", "push needs keys with a public_key (mindvec.keys.SecretKey)")
        with tempfile.TemporaryDirectory(prefix="mindvec-push-") as folder:
            filename = options.pop("filename", f"{self.name}.mindvec")
            path = self.save(Path(folder) / filename, sign=signers)
            return push(path, repo_id, public_key=keys, **options)


def _local_source(model: torch.nn.Module) -> dict[str, Any]:
    name = getattr(getattr(model, "config", None), "_name_or_path", "") or "in-memory model"
    return {"kind": "local", "note": str(name)[:256]}


def extract(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    positive: Sequence[str],
    negative: Sequence[str],
    *,
    layers: Iterable[int] | None = None,
    point: str = "resid_post",
    method: str = "mean_diff",
    reduce: str = "mean",
    name: str = "steer",
    package_id: str = "local/steer",
    description: str = "",
    intended_effect: str = "",
    source: Mapping[str, Any] | None = None,
    batch_size: int = 8,
    max_tokens: int = 128,
    progress: bool = False,
) -> Vector:
    """A vector from positive and negative texts (difference of means, or PCA of differences).

    ``layers``: the decoder blocks whose output (``point``, default ``resid_post``) it acts
    on (default: all). ``source``: where the weights came from, as in the manifest
    (default: ``{kind: local, note: <the model's name>}``).
    """
    from mindvec.fit.activations import layer_sites
    from mindvec.fit.vectors import extract_at_sites
    from mindvec.loader.binding import model_ref

    sites = layer_sites(model, layers, point)
    fitted = extract_at_sites(
        model,
        tokenizer,
        positive,
        negative,
        sites,
        method=method,
        reduce=reduce,
        batch_size=batch_size,
        max_tokens=max_tokens,
        progress=progress,
    )
    meta = Meta(
        package_id=package_id,
        description=description or f"{method} vector from {len(positive)}+{len(negative)} texts",
        intended_effect=intended_effect,
    )
    dataset = dataset_entry("texts", [*positive, "\x00", *negative], len(positive) + len(negative))
    ref = model_ref(model, source=source if source is not None else _local_source(model))
    return Vector(fitted, ref, meta, dataset, name=name)


def train(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    samples: Sequence[tuple[str, str]],
    **options: Any,
) -> Vector:
    """``extract`` from ``(positive, negative)`` pairs, as steering-vectors' training samples come."""
    pairs = list(samples)
    if not pairs or any(len(pair) != 2 for pair in pairs):
        raise UsageError("argument", "samples must be a non-empty list of (positive, negative) text pairs")
    return extract(model, tokenizer, [p for p, _ in pairs], [n for _, n in pairs], **options)
