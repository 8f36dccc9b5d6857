"""Conformance cases: rules the first round never exercised alone, one defect each.

Most start from the translated package of :func:`conformance_tests.casebook.common.translated_package`
(two models, a mapping, a translated vector, correspondences) and break one reference or site.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np

from conformance_tests.casebook.common import W34, ab_models, translated_package
from conformance_tests.craft.manifests import (
    MODEL_T5,
    STEER,
    arr,
    bf16,
    header_json,
    manifest,
    mapping,
    raw_package,
    site,
    vector,
    write,
)
from conformance_tests.craft.surgery import join_payload
from conformance_tests.suite import Suite

Edit = Callable[[dict[str, Any]], None]


def unexercised(s: Suite) -> None:
    def broken(case_id: str, code: str, topics: list[str], why: str, flags: list[str], edit: Edit) -> None:
        man, tensors = translated_package()
        edit(man)
        s.reject(case_id, code, topics, why, flags, raw_package(man, tensors))

    def setter(path: str, value: Any) -> Edit:
        def edit(man: dict[str, Any]) -> None:
            *parents, last = path.split("/")
            node: Any = man
            for part in parents:
                node = node[int(part)] if part.isdigit() else node[part]
            node[int(last) if last.isdigit() else last] = value

        return edit

    refs = [
        ("mapping-source", "mappings/0/source/model", "mappings[0].source.model"),
        ("mapping-target", "mappings/0/target/model", "mappings[0].target.model"),
        ("correspondence-source", "correspondences/0/source/model", "correspondences[0].source.model"),
        ("correspondence-target", "correspondences/1/target/model", "correspondences[1].target.model"),
        ("translation-source", "vectors/1/translation/source_model", "vectors[1].translation.source_model"),
    ]
    for label, path, where in refs:
        broken(
            f"invalid-schema-unknown-model-in-{label}",
            "schema",
            ["model-refs"],
            f"{where} names the model 'ghost', which is not a key of models.",
            ["Semantics"],
            setter(path, "ghost"),
        )
    broken(
        "invalid-schema-translation-mapping-unknown",
        "schema",
        ["translation-mapping"],
        "vectors[1].translation.mapping names the mapping 'ghost', which the package does not hold, and no"
        " mapping_package says where else it is.",
        ["Semantics"],
        setter("vectors/1/translation/mapping", "ghost"),
    )
    man, tensors = translated_package()
    man["vectors"][1]["translation"]["mapping"] = "held-elsewhere"
    man["vectors"][1]["translation"]["mapping_package"] = hashlib.sha256(b"the map package").digest()
    s.valid(
        "valid-translation-mapping-in-another-package",
        ["translation-mapping"],
        "A translation whose mapping lives in another package (mapping_package given): its name is not"
        " checked against this package's mappings.",
        ["Semantics"],
        write(man, tensors),
    )

    def twin_mapping(man: dict[str, Any]) -> None:
        man["mappings"].append(copy.deepcopy(man["mappings"][0]))

    man, tensors = translated_package()
    twin_mapping(man)
    second = man["mappings"][1]
    second["tensors"] = {"weight": "map2.weight", "bias": "map2.bias"}
    tensors = {**tensors, "map2.weight": W34, "map2.bias": arr([0.5, -0.5, 1.0])}
    s.reject(
        "invalid-schema-duplicate-mapping-name",
        "schema",
        ["unique-names"],
        "Two mappings named a-to-b (with their own tensors).",
        ["Semantics", "Mapping"],
        raw_package(man, tensors),
    )
    broken(
        "invalid-site-mapping-target-layer-beyond",
        "site",
        ["site-layer"],
        "mappings[0].target.site is at layer 9 of model b, which has 3 layers.",
        ["Site", "Mapping"],
        setter("mappings/0/target/site", site(9)),
    )
    broken(
        "invalid-site-correspondence-resid-pre-layer-1",
        "site",
        ["resid-pre"],
        "correspondences[1].source.site is resid_pre of layer 1 (must be written resid_post of layer 0).",
        ["Site"],
        setter("correspondences/1/source/site", site(1, "resid_pre")),
    )
    t5 = {"t5": copy.deepcopy(MODEL_T5)}
    man = manifest(
        [vector(model="t5", sites=[(site(0, "cross_attn_out", "encoder"), "steer.l1")])], models=t5
    )
    s.reject(
        "invalid-site-cross-attn-on-encoder-stack",
        "site",
        ["cross-attn"],
        "cross_attn_out on the encoder stack of an encoder-decoder model: it exists in the decoder only.",
        ["Site"],
        raw_package(man, {"steer.l1": arr(STEER)}),
    )
    man = manifest(vectors=[], models=ab_models())
    man["mappings"] = [mapping("low_rank", {"u": "map.u", "v": "map.v"})]
    s.reject(
        "invalid-shape-low-rank-ranks-differ",
        "shape",
        ["shape"],
        "A low_rank mapping with u [3, 2] and v [4, 1]: u and v must have the same r.",
        ["Mapping"],
        raw_package(man, {"map.u": arr(W34[:, :2]), "map.v": arr(W34.T[:, :1])}),
    )
    for label, values, dtype in (
        ("nan-f16", [0.5, np.nan, 2.0, 0.25], "float16"),
        ("inf-bf16", [0.5, np.inf, 2.0, 0.25], "bf16"),
    ):
        data = bf16(values) if dtype == "bf16" else arr(values, dtype)
        s.reject(
            f"invalid-value-{label}",
            "value",
            ["vector-value"],
            f"A {dtype.upper()} vector holding {'NaN' if 'nan' in label else 'Inf'}: every tensor must be"
            " finite, whatever its dtype.",
            ["Dtype"],
            raw_package(manifest(), {"steer.l1": data}),
        )
    man = manifest()
    man["extensions"] = {"org.example.x": 1}
    man["critical"] = ["org.example.x", "org.example.x"]
    s.reject(
        "invalid-schema-critical-not-unique",
        "schema",
        ["schema"],
        "critical lists org.example.x twice: its items must be unique.",
        ["Schema", "Extension"],
        raw_package(man, {"steer.l1": arr(STEER)}),
    )
    entry = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}
    header = header_json([("steer.l1", entry)]).replace(b'"F32"', b'"F\xff2"')
    s.reject(
        "malformed-payload-header-invalid-utf8",
        "payload",
        ["hdrpad"],
        "The header's dtype string holds the byte ff: the header must be valid UTF-8.",
        ["Safetensors", "Unicode"],
        raw_package(
            manifest(),
            payload=join_payload(header, arr(STEER).tobytes()),
            digests={"steer.l1": hashlib.sha256(arr(STEER).tobytes()).digest()},
        ),
    )
    man = manifest()
    man["package"]["id"] = "conformance/minimal\n"
    s.reject(
        "invalid-schema-pattern-final-newline",
        "schema",
        ["schema"],
        "package.id 'conformance/minimal' followed by LF: a pattern ending in $ must not match before a"
        " final newline (patterns match the whole string).",
        ["Schema", "Unicode"],
        raw_package(man, {"steer.l1": arr(STEER)}),
    )
    for label, created in (("february-30", "2026-02-30T00:00:00Z"), ("hour-24", "2026-01-01T24:00:00Z")):
        man = manifest()
        man["provenance"]["created"] = created
        s.reject(
            f"invalid-schema-created-{label}",
            "schema",
            ["created"],
            f"provenance.created is {created}, which matches the pattern but is not a time that exists.",
            ["Schema"],
            raw_package(man, {"steer.l1": arr(STEER)}),
        )
    man = manifest()
    man["package"]["description"] = "\ufeffa description that starts with a byte order mark"
    s.valid(
        "valid-string-starting-with-bom",
        ["manifest-schema"],
        "package.description starts with U+FEFF: inside a string it is an ordinary character, kept as is"
        " (it is not stripped, and it breaks no rule).",
        ["Unicode"],
        write(man, {"steer.l1": arr(STEER)}),
    )
    man = manifest()
    man["format"] = "1.0"
    man["colour"] = "blue"
    s.reject(
        "malformed-version-relaxed-by-the-preamble",
        "version",
        ["minor-additive", "format"],
        'Preamble 1.2, format "1.0" and an unknown top-level key: relaxed validation follows the'
        " preamble's minor version (known before the manifest is decoded), so the schema passes and R-27"
        " fails.",
        ["ForwardCompatible", "MultipleDefects"],
        raw_package(man, {"steer.l1": arr(STEER)}, version=(1, 2)),
    )
