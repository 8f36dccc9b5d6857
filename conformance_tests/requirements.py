"""Cases name topics; ``TOPICS`` maps each topic to the spec's requirement ids.

Keeping the mapping in one table makes renumbering the spec a one-place change.
"""

from __future__ import annotations

from collections.abc import Iterable

#
# Cases name topics; TOPICS maps each topic to the spec's requirement ids. Keeping the
# mapping in one table makes renumbering the spec a one-place change.

TOPICS: dict[str, tuple[str, ...]] = {
    # 2.2 structure
    "magic": ("R-1",),
    "major": ("R-2",),
    "minor-accept": ("R-3",),
    "flags": ("R-4",),
    "short-file": ("R-5",),
    "manifest-len": ("R-6", "R-8"),
    "payload-len": ("R-7", "R-8"),
    "fit": ("R-8",),
    "end-magic": ("R-9",),
    "sig-len": ("R-10",),
    "exact": ("R-11",),
    "layout": ("R-8", "R-11"),
    "padding": ("R-12",),
    # 3 canonical msgpack
    "map-keys": ("R-15",),
    "dup-key": ("R-16",),
    "ext": ("R-17",),
    "finite": ("R-18",),
    "utf8": ("R-19",),
    "depth": ("R-20",),
    "containers": ("R-86",),
    "valid-msgpack": ("R-87",),
    "occupy": ("R-21",),
    "reencode": ("R-22",),
    # 4, 5 manifest
    "schema": ("R-23",),
    "manifest-schema": ("R-23",),
    "types": ("R-24",),
    "manifest-types": ("R-24",),
    "byte-length": ("R-25",),
    "format": ("R-27",),
    "critical": ("R-28",),
    "model-refs": ("R-29",),
    "translation-mapping": ("R-90",),
    "created": ("R-91",),
    "unique-names": ("R-30",),
    "mapping-forms": ("R-32",),
    "scale-range": ("R-33",),
    "tensor-refs": ("R-34", "R-51"),
    "orthogonal": ("R-37",),
    # 7 payload
    "nbound": ("R-40",),
    "n56": ("R-41",),
    "header-digest": ("R-42",),
    "hdrpad": ("R-43",),
    "json-number": ("R-43",),
    "json-dup": ("R-44",),
    "metadata": ("R-45",),
    "tensor-count": ("R-46",),
    "entry-keys": ("R-47",),
    "dtype": ("R-48",),
    "nbytes": ("R-49",),
    "payload-nbytes": ("R-49",),
    "contig": ("R-50",),
    "payload-contig": ("R-50",),
    "shape": ("R-52",),
    "tensor-digest": ("R-53",),
    "vector-value": ("R-54",),
    # 8.1 sites
    "site-layer": ("R-31", "R-56"),
    "site-twice": ("R-31", "R-57"),
    "resid-pre": ("R-31", "R-58"),
    "cross-attn": ("R-31", "R-59"),
    # 9 signatures
    "sig-block": ("R-13", "R-62"),
    "sig-sort": ("R-13", "R-63"),
    "keyid": ("R-64",),
    "pae": ("R-65",),
    "strict": ("R-66",),
    # 10, 11 order and trust
    "order": ("R-69",),
    "policy": ("R-82",),
    "policy-no-relax": ("R-71",),
    "now": ("R-73",),
    "revoked": ("R-74",),
    "rollback": ("R-75",),
    "trust-grammar": ("R-77",),
    "state-file": ("R-88",),
    "policy-order": ("R-89",),
    # 12 versions and extensions
    "major-reject": ("R-2",),
    "minor-additive": ("R-80",),
    "format-1-1": ("R-93",),
    "statistics": ("R-95",),
    "imported": ("R-96",),
    "ext-ignore": ("R-81",),
}


def requirement_ids(topics: Iterable[str]) -> list[str]:
    ids: list[str] = []
    for topic in topics:
        if topic not in TOPICS:
            raise KeyError(f"topic {topic!r} has no requirement ids in TOPICS")
        for rid in TOPICS[topic]:
            if rid not in ids:
                ids.append(rid)
    return ids
