"""``steer()``: apply a package's steering vector(s) to a live transformers model.

Order of work, so that nothing is installed unless everything checks out:
open the package (path, Package, or ``hf://org/repo[@rev]/file`` via ``mindvec.hub.pull``)
-> signature policy (``mindvec.verification.enforce``) -> pick vectors -> model binding check
(``check_binding``) -> load tensors (digest-checked) -> resolve every site -> install.

One hook per site and per model: every handle's operations at a site run inside that one
hook, in the order the handles were created, so handles compose and removing one leaves
the others intact. Removing the last operation at a site removes the hook, which restores
the model bit for bit.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mindvec.errors import InvalidError, UsageError
from mindvec.loader.binding import check_binding, text_config
from mindvec.loader.hooks import ContextRecorder, Operation, Positions, SiteOps, check_positions
from mindvec.loader.rows import Rows
from mindvec.loader.sites import HookPoint, SiteHandle, attach, resolve
from mindvec.loader.stacks import check_stack, find_stacks
from mindvec.manifest import VectorSite, VectorSpec
from mindvec.package import Package, PackageSource
from mindvec.payload import as_float32
from mindvec.policy import Policy, from_legacy
from mindvec.site import Site, as_site
from mindvec.translation import translate_vector
from mindvec.verification import checked

if TYPE_CHECKING:
    import torch

VectorChoice = str | Sequence[str] | Mapping[str, float] | None


@dataclass
class _Slot:
    handle: SiteHandle
    ops: list[Operation]


class _ModelSteerer:
    """All steering state of one model: context recorders and one hook per site."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.recorders: dict[str, ContextRecorder] = {}
        self.slots: dict[Site, _Slot] = {}

    def _recorder(self, stack: str) -> ContextRecorder:
        if stack not in self.recorders:
            config = getattr(self.model, "config", None)
            seq2seq = bool(getattr(config, "is_encoder_decoder", False))
            if stack == "encoder":
                encoder = self.model.get_encoder()
                self.recorders[stack] = ContextRecorder(encoder, encoder=True)
            else:
                self.recorders[stack] = ContextRecorder(self.model, decoder_of_seq2seq=seq2seq)
        return self.recorders[stack]

    def install(self, point: HookPoint, op: Operation) -> None:
        site = point.site
        slot = self.slots.get(site)
        if slot is None:
            run = SiteOps(self._recorder(site.stack), on_refuse=self.abandon)
            slot = _Slot(attach(self.model, site, run), run.ops)
            self.slots[site] = slot
        slot.ops.append(op)

    def abandon(self) -> None:
        """Remove every hook this model carries from mindvec (a looped model was found)."""
        for slot in self.slots.values():
            slot.handle.remove()
            slot.ops.clear()
        self.slots.clear()
        while self.recorders:
            self.recorders.popitem()[1].remove()

    def uninstall(self, site: Site, op: Operation) -> None:
        slot = self.slots.get(site)
        if slot is None:
            return
        if op in slot.ops:
            slot.ops.remove(op)
        if not slot.ops:
            slot.handle.remove()
            del self.slots[site]
        stacks_in_use = {s.stack for s in self.slots}
        for stack in [s for s in self.recorders if s not in stacks_in_use]:
            self.recorders.pop(stack).remove()


_STEERERS: weakref.WeakKeyDictionary[Any, _ModelSteerer] = weakref.WeakKeyDictionary()


def _steerer(model: Any) -> _ModelSteerer:
    found = _STEERERS.get(model)
    if found is None:
        found = _STEERERS[model] = _ModelSteerer(model)
    return found


@dataclass
class _Entry:
    vector: str
    site: Site
    op: Operation
    weight: float


class SteeringHandle:
    """Steering installed on a model. A context manager; ``remove()`` restores exactly.

    ``scale`` is live: setting it gives every vector of this handle the scale
    ``value * weight`` (weight 1 unless ``vector=`` gave weights).
    """

    def __init__(self, steerer: _ModelSteerer, entries: list[_Entry], scale: float | None) -> None:
        self._steerer = steerer
        self._entries = entries
        self._scale = scale

    @property
    def sites(self) -> list[Site]:
        return [e.site for e in self._entries]

    @property
    def vectors(self) -> list[str]:
        return list(dict.fromkeys(e.vector for e in self._entries))

    @property
    def active(self) -> bool:
        """True while at least one of this handle's operations is installed."""
        for e in self._entries:
            slot = self._steerer.slots.get(e.site)
            if slot is not None and e.op in slot.ops:
                return True
        return False

    @property
    def scale(self) -> float:
        """The common scale; when none was given, the first vector's (default) scale."""
        if self._scale is not None:
            return self._scale
        first = self._entries[0]
        return first.op.scale / first.weight if first.weight else first.op.scale

    @scale.setter
    def scale(self, value: float) -> None:
        value = float(value)
        if not np.isfinite(value):
            raise UsageError("argument", "scale must be a finite number")
        self._scale = value
        for e in self._entries:
            e.op.scale = value * e.weight

    @property
    def rows(self) -> tuple[bool, ...] | None:
        """The row mask this handle steers (None: every row)."""
        rows = self._entries[0].op.rows if self._entries else None
        return None if rows is None else rows.mask

    @rows.setter
    def rows(self, value: Sequence[bool] | Sequence[int] | None) -> None:
        chosen = None if value is None else Rows(value)
        for e in self._entries:
            e.op.rows = chosen

    def remove(self) -> None:
        """Remove this handle's operations; hooks with no operation left are removed."""
        for e in self._entries:
            self._steerer.uninstall(e.site, e.op)

    def __enter__(self) -> SteeringHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def __repr__(self) -> str:
        sites = ", ".join(str(s) for s in self.sites)
        return f"SteeringHandle(vectors={self.vectors}, scale={self.scale}, sites=[{sites}])"


@dataclass
class _Plan:
    vector: str
    site: Site
    values: np.ndarray[Any, Any]
    operation: str
    scale: float
    weight: float
    positions: Positions


def _open(stack: contextlib.ExitStack[bool | None], package: PackageSource, policy: Policy) -> Package:
    """Open and check ``package`` (a path, a Package or an ``hf://`` URL); ``stack`` closes it."""
    if isinstance(package, str) and package.startswith("hf://"):
        from mindvec import hub  # lazily: needs huggingface_hub

        return stack.enter_context(hub.pull(package, policy=policy))
    opened, _report = stack.enter_context(checked(package, policy))
    return opened


def _choices(pkg: Package, vector: VectorChoice) -> list[tuple[VectorSpec, float]]:
    if vector is None or isinstance(vector, str):
        return [(pkg.vector(vector), 1.0)]
    if isinstance(vector, Mapping):
        return [(pkg.vector(name), float(w)) for name, w in vector.items()]
    return [(pkg.vector(name), 1.0) for name in vector]


def _values(pkg: Package, name: str) -> np.ndarray[Any, Any]:
    return np.array(as_float32(pkg.tensor(name), pkg.tensor_info(name).dtype), dtype=np.float32)


def _filter_layers(spec: VectorSpec, layers: Sequence[int] | None) -> list[VectorSite]:
    if layers is None:
        return list(spec.sites)
    have = sorted({vs.site.layer for vs in spec.sites})
    missing = sorted(set(layers) - set(have))
    if missing:
        raise UsageError(
            "argument",
            f"vector {spec.name!r} has no site at layer(s) {missing}; its layers are {have}",
        )
    return [vs for vs in spec.sites if vs.site.layer in set(layers)]


def _direct_plans(
    model: torch.nn.Module, pkg: Package, vector: VectorChoice, layers: Sequence[int] | None, strict: bool
) -> list[_Plan]:
    plans = []
    for spec, weight in _choices(pkg, vector):
        check_binding(model, pkg.model(spec.model), strict)
        for vs in _filter_layers(spec, layers):
            plans.append(
                _Plan(
                    spec.name,
                    as_site(vs.site),
                    _values(pkg, vs.tensor),
                    spec.operation,
                    float(spec.scale),
                    weight,
                    spec.positions,
                )
            )
    return plans


def _via_plans(
    model: torch.nn.Module,
    pkg: Package,
    mpkg: Package,
    vector: VectorChoice,
    layers: Sequence[int] | None,
    strict: bool,
) -> list[_Plan]:
    plans = []
    for spec, weight in _choices(pkg, vector):
        tv = translate_vector(pkg, mpkg, vector=spec.name)
        check_binding(model, mpkg.model(tv.target_model), strict)
        site = as_site(tv.target_site)
        if layers is not None and site.layer not in set(layers):
            raise UsageError(
                "argument",
                f"the translated vector {spec.name!r} acts only at layer {site.layer}; adjust layers=",
            )
        plans.append(_Plan(spec.name, site, tv.tensor, tv.operation, tv.scale, weight, tv.positions))
    return plans


def _like(point: HookPoint) -> torch.Tensor:
    import torch

    block = point.stack.block(point.site.layer)
    for p in block.parameters():
        if p.is_floating_point():
            return torch.empty(0, dtype=p.dtype, device=p.device)
    return torch.empty(0)


def steer(
    model: torch.nn.Module,
    package: PackageSource,
    *,
    vector: VectorChoice = None,
    scale: float | None = None,
    layers: Sequence[int] | None = None,
    positions: Positions | None = None,
    via: PackageSource | None = None,
    strict: bool = True,
    policy: Policy | None = None,
    rows: Sequence[bool] | Sequence[int] | None = None,
    **legacy: Any,
) -> SteeringHandle:
    """Steer ``model`` with a package's vector(s); returns a removable handle.

    - ``package``: a path, a :class:`mindvec.Package`, or ``hf://org/repo[@rev]/file``.
    - ``vector``: a name (default: the only vector), a list of names, or ``{name: weight}``.
    - ``scale``: overrides each vector's default scale (times its weight).
    - ``layers``: keep only the vector's sites at these layers.
    - ``positions``: ``all``, ``prompt``, ``generated``, ``last_prompt`` or a start index
      (default: the vector's own).
    - ``via``: a mapping package; the vector is translated (``W v``) into this model with
      the recommended scale of :mod:`mindvec.translation`.
    - ``strict=False`` turns a model-mismatch into a warning.
    - ``rows``: steer only these rows of each batch, a mask over the input batch
      (``[True, False, True]``, repeated for beams and ``num_return_sequences``) or row
      indices (``[0, 2]``); other handles may steer the other rows with other packages, and
      rows no handle names run unsteered. Settable later: ``handle.rows = [...]``.
    - ``policy``: the :class:`~mindvec.policy.Policy` both packages must pass (default: signed
      by a key in the default trust store). The 0.1 keywords ``trust``, ``allow_unsigned``
      and ``allow_untrusted`` still work, with a DeprecationWarning.

    Packages opened here (from a path or a URL) are closed before this returns; the vectors
    are copied, so the handle holds no file open.
    """
    if positions is not None:
        positions = check_positions(positions)
    if scale is not None and not np.isfinite(float(scale)):
        raise UsageError("argument", "scale must be a finite number")
    accepted = from_legacy(policy, legacy, "steer")
    with contextlib.ExitStack() as opened:
        pkg = _open(opened, package, accepted)
        if via is None:
            plans = _direct_plans(model, pkg, vector, layers, strict)
        else:
            plans = _via_plans(model, pkg, _open(opened, via, accepted), vector, layers, strict)
    hidden = getattr(text_config(model), "hidden_size", None)
    points = [resolve(model, p.site) for p in plans]  # site errors before any hook exists
    for plan in plans:
        if hidden is not None and plan.values.shape != (hidden,):
            raise InvalidError(
                "shape", f"vector {plan.vector!r} has shape {plan.values.shape}, model hidden {hidden}"
            )
    stacks = find_stacks(model)
    for plan in plans:  # a wrong stack is refused from metadata, before any hook exists
        check_stack(model, stacks.get(plan.site.stack), int(plan.values.shape[0]))
    import torch

    chosen_rows = None if rows is None else Rows(rows)
    ops = []
    for plan, point in zip(plans, points, strict=True):
        s = (float(scale) if scale is not None else plan.scale) * plan.weight
        pos = positions if positions is not None else plan.positions
        ops.append(
            Operation(
                plan.operation, torch.from_numpy(plan.values), s, pos, like=_like(point), rows=chosen_rows
            )
        )
    steerer = _steerer(model)
    entries = []
    for plan, point, op in zip(plans, points, ops, strict=True):
        steerer.install(point, op)
        entries.append(_Entry(plan.vector, plan.site, op, plan.weight))
    return SteeringHandle(steerer, entries, None if scale is None else float(scale))
