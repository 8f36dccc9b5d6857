"""A site: where in a model a vector acts or a map reads, ``(stack, layer, point)``.

One type, one printed form, used by the spec, ``inspect``, model cards and errors::

    decoder.3.resid_post

:func:`parse` also reads the forms that earlier releases printed, ``decoder[3].resid_post``
(the loader) and ``decoder:3:resid_post`` (model cards), so published text stays readable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from mindvec.errors import InvalidError, UsageError

STACKS = ("decoder", "encoder")
POINTS = ("resid_pre", "resid_post", "attn_out", "mlp_out", "cross_attn_out")
#: points that are one term of the residual sum, not the stream itself
TERM_POINTS = ("attn_out", "mlp_out", "cross_attn_out")

_FORMS = (
    re.compile(r"(?P<stack>[a-z]+)\.(?P<layer>[0-9]+)\.(?P<point>[a-z_]+)"),
    re.compile(r"(?P<stack>[a-z]+)\[(?P<layer>[0-9]+)\]\.(?P<point>[a-z_]+)"),
    re.compile(r"(?P<stack>[a-z]+):(?P<layer>[0-9]+):(?P<point>[a-z_]+)"),
)


class SiteLike(Protocol):
    """Anything with a stack, a layer and a point (a :class:`Site`, a view, a test double)."""

    @property
    def stack(self) -> str: ...

    @property
    def layer(self) -> int: ...

    @property
    def point(self) -> str: ...


#: everything :func:`as_site` accepts
SiteArg = SiteLike | Mapping[str, Any] | tuple[str, int, str] | str


@dataclass(frozen=True)
class Site:
    """A site address. Build one with :func:`as_site` to have it checked."""

    stack: str
    layer: int
    point: str

    def __str__(self) -> str:
        return f"{self.stack}.{self.layer}.{self.point}"

    def to_dict(self) -> dict[str, Any]:
        """The manifest form (keys in canonical order)."""
        return {"layer": self.layer, "point": self.point, "stack": self.stack}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Site:
        """A site from a manifest dict the schema already checked (``stack`` defaults to decoder)."""
        return cls(stack=data.get("stack", "decoder"), layer=data["layer"], point=data["point"])


def parse(text: str) -> Site:
    """Read ``decoder.3.resid_post`` (or an older printed form) into a checked :class:`Site`."""
    for form in _FORMS:
        match = form.fullmatch(text)
        if match:
            return check(Site(match["stack"], int(match["layer"]), match["point"]))
    raise UsageError(
        "argument", f"{text[:80]!r} is not a site; write stack.layer.point, e.g. decoder.3.resid_post"
    )


def check(site: Site) -> Site:
    """Raise ``site`` unless ``site`` is a well-formed address (in any model)."""
    layer = site.layer
    if not isinstance(layer, int) or isinstance(layer, bool) or layer < 0:
        raise InvalidError("site", f"site layer must be a non-negative integer, got {layer!r}")
    if site.point not in POINTS:
        raise InvalidError("site", f"unknown site point {site.point!r}; use one of {', '.join(POINTS)}")
    if site.stack not in STACKS:
        raise InvalidError("site", f"unknown stack {site.stack!r}; use 'decoder' or 'encoder'")
    if site.point == "resid_pre" and layer != 0:
        raise InvalidError(
            "site",
            f"resid_pre is written only for layer 0; the input of block {layer} is "
            f"resid_post of layer {layer - 1}, address it that way",
        )
    return site


def as_site(site: SiteArg) -> Site:
    """A checked :class:`Site` from a Site, a manifest dict, a ``(stack, layer, point)`` tuple or text."""
    if isinstance(site, Site):
        return check(site)
    if isinstance(site, str):
        return parse(site)
    if isinstance(site, Mapping):
        return check(Site(site.get("stack", "decoder"), site.get("layer"), site.get("point")))  # type: ignore[arg-type]
    if isinstance(site, tuple):
        if len(site) != 3:
            raise UsageError(
                "argument", "a site tuple is (stack, layer, point), e.g. ('decoder', 3, 'resid_post')"
            )
        return check(Site(str(site[0]), site[1], str(site[2])))
    return check(Site(str(site.stack), site.layer, str(site.point)))
