"""Conformance cases: forward compatibility, extensions."""

from __future__ import annotations

from conformance_tests.craft.manifests import STEER, arr, manifest, raw_package, site, vector, write
from conformance_tests.suite import Suite


def versions_and_extensions(s: Suite) -> None:
    man = manifest()
    man["future_feature"] = {"enabled": True}
    man["package"]["tagline"] = "added by a later minor version"
    s.valid(
        "valid-minor-version-1-2",
        ["minor-accept", "minor-additive", "format"],
        'Preamble version 1.2 and format "1.2" with unknown keys at the top level and in package:'
        " a 1.1 reader validates with additionalProperties relaxed.",
        ["ForwardCompatible"],
        raw_package(man, {"steer.l1": arr(STEER)}, version=(1, 2)),
    )
    s.valid(
        "valid-minor-version-65535",
        ["minor-accept", "format"],
        "The largest minor version, 1.65535.",
        ["ForwardCompatible", "Limits"],
        raw_package(manifest(), {"steer.l1": arr(STEER)}, version=(1, 65535)),
    )
    man = manifest([vector(sites=[(site(1, "resid_pre"), "steer.l1")])])
    s.reject(
        "invalid-minor-version-known-rules-apply",
        "site",
        ["minor-additive", "resid-pre"],
        "A 1.2 package breaking a 1.0 site rule: a reader still applies every rule it knows.",
        ["ForwardCompatible", "Site"],
        raw_package(man, {"steer.l1": arr(STEER)}, version=(1, 2)),
    )
    for label, preamble, fmt in (
        ("1-0-vs-1-1", (1, 0), "1.1"),
        ("1-1-vs-1-0", (1, 1), "1.0"),
        ("leading-zero", (1, 0), "1.00"),
    ):
        man = manifest()
        man["format"] = fmt
        s.reject(
            f"malformed-version-format-{label}",
            "version",
            ["format"],
            f"Preamble version {preamble[0]}.{preamble[1]} but signed format {fmt!r}.",
            ["Structure"],
            raw_package(man, {"steer.l1": arr(STEER)}, version=preamble),
        )
    man = manifest()
    man["extensions"] = {
        "org.example.unknown": {
            "int": 1,
            "float": 1.0,
            "negzero": -0.0,
            "tiny": 5e-324,
            "huge": 1.7976931348623157e308,
            "u64max": 2**64 - 1,
            "i64min": -(2**63),
            "bin": b"\x00\xff",
            "nil": None,
            "flags": [True, False],
            "$bytes": "not a tag",
            "$float": {"$": "dollar keys get one more dollar"},
            "text": "\u00e9\U0001f9ed",
        },
        "com.example.other": [],
    }
    s.valid(
        "valid-extension-not-critical",
        ["ext-ignore", "manifest-schema"],
        "Unknown, non-critical extensions are ignored; their values test the tagged JSON summary"
        " (int vs float, -0.0, extremes of int and float, bin, nil, keys starting with $).",
        ["Extension", "TaggedJson"],
        write(man, {"steer.l1": arr(STEER)}),
    )
    man = manifest()
    man["extensions"] = {}
    man["critical"] = []
    s.valid(
        "valid-extension-empty-critical",
        ["critical"],
        "An empty extensions map and an empty critical list.",
        ["Extension"],
        write(man, {"steer.l1": arr(STEER)}),
    )
    man = manifest()
    man["extensions"] = {"org.example.must-understand": {"v": 1}}
    man["critical"] = ["org.example.must-understand"]
    s.reject(
        "invalid-critical-extension-unknown",
        "critical-extension",
        ["critical"],
        "An extension listed in critical that no 1.0 reader understands.",
        ["Extension"],
        raw_package(man, {"steer.l1": arr(STEER)}),
    )
    man = manifest()
    man["critical"] = ["org.example.absent"]
    s.reject(
        "invalid-critical-extension-not-in-extensions",
        "critical-extension",
        ["critical"],
        "critical names an extension that is not a key of extensions.",
        ["Extension"],
        raw_package(man, {"steer.l1": arr(STEER)}),
    )
