"""Conformance cases: either outcome allowed."""

from __future__ import annotations

import hashlib

import numpy as np

from conformance_tests.casebook.common import ab_models
from conformance_tests.casebook.payload import A_BYTES, B_BYTES, GOOD_HEADER, two_site_manifest
from conformance_tests.craft.manifests import STEER, arr, header_json, manifest, mapping, raw_package
from conformance_tests.craft.surgery import join_payload
from conformance_tests.suite import Suite


def acceptable(s: Suite) -> None:
    man = manifest(vectors=[], models=ab_models())
    man["mappings"] = [mapping("orthogonal", {"weight": "map.weight"})]
    s.acceptable(
        "acceptable-orthogonal-not-orthonormal",
        ["orthogonal"],
        "An orthogonal mapping whose weight rows are not orthonormal (every entry 0.5). R-37 binds writers; "
        "the"
        " spec gives readers no code for it, so a reader may accept the package or reject it as a bad value.",
        ["Mapping"],
        raw_package(man, {"map.weight": arr(np.full((3, 4), 0.5))}),
        codes=["value"],
    )
    man = manifest()
    man["extensions"] = {"com.acme.quantized-vectors": {"bits": 4}}
    man["critical"] = ["com.acme.quantized-vectors"]
    s.acceptable(
        "acceptable-critical-vendor-extension",
        ["critical"],
        "A critical vendor extension. A reader that implements com.acme.quantized-vectors accepts the "
        "package;"
        " every other reader must reject it with critical-extension.",
        ["Extension"],
        raw_package(man, {"steer.l1": arr(STEER)}),
        codes=["critical-extension"],
    )
    deep_shape = b"[" * 50_000 + b"4" + b"]" * 50_000
    header = header_json(GOOD_HEADER).replace(b'"shape":[4]', b'"shape":' + deep_shape, 1)
    digests = {"t.a": hashlib.sha256(A_BYTES).digest(), "t.b": hashlib.sha256(B_BYTES).digest()}
    s.acceptable(
        "acceptable-payload-header-deep-nesting",
        ["entry-keys"],
        "A safetensors header whose first shape is nested 50000 arrays deep (valid JSON, 100 kB)."
        " R-47 makes it a payload error; a parser that bounds JSON nesting reports depth."
        " Either code is fine; a crash is not.",
        ["Safetensors", "Depth", "HostileLength"],
        raw_package(two_site_manifest(), payload=join_payload(header, A_BYTES + B_BYTES), digests=digests),
        codes=["payload", "depth"],
    )
