"""``mindvec inspect FILE [--json]``: a readable summary of a package.

Everything shown comes from the signed manifest (or the header it binds), but the
signatures are *not* checked here: they are labelled "unverified" and the reader is
pointed to ``mindvec verify``. Every string from the file is shown with control
characters escaped (ANSI escapes, bidi overrides) so a signed description cannot
repaint the terminal; ``--json`` relies on JSON's own ``\\uXXXX`` escaping with
``ensure_ascii``. Digests and key ids are lowercase hex.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from mindvec import package as pkg
from mindvec.interop.names import transformer_lens
from mindvec.payload import as_float32
from mindvec.site import Site
from mindvec.text import escape as esc

#: correspondences shown in text mode (all of them go to --json)
MAX_CORRESPONDENCE_LINES = 20


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("inspect", help="show what a .mindvec package contains (no verification)")
    parser.add_argument("file", help="the .mindvec file")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with pkg.open(args.file) as package:
        summary = summarize(package)
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=True))
    else:
        print("\n".join(render(summary)))
    return 0


# ---------------------------------------------------------------- summary (plain data)


def _jsonable(value: Any) -> Any:
    """Bytes become lowercase hex; containers are converted recursively."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _tensor_summary(package: pkg.Package, name: str) -> dict[str, Any]:
    info = package.tensor_info(name)
    return {"name": name, "dtype": info.dtype, "shape": list(info.shape)}


def _vector_summary(package: pkg.Package, vector: Mapping[str, Any]) -> dict[str, Any]:
    out = _jsonable(vector)
    for entry in out["sites"]:
        values = as_float32(package.tensor(entry["tensor"]), package.tensor_info(entry["tensor"]).dtype)
        entry.update(_tensor_summary(package, entry["tensor"]))
        entry["norm"] = float(np.linalg.norm(values.astype(np.float64)))
        entry["transformer_lens"] = transformer_lens(Site.from_dict(entry["site"]))
    return dict(out)


def _mapping_summary(package: pkg.Package, mapping: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(_jsonable(mapping))
    out["tensors"] = {role: _tensor_summary(package, name) for role, name in mapping["tensors"].items()}
    return out


def summarize(package: pkg.Package) -> dict[str, Any]:
    """Everything ``inspect`` shows, as JSON-ready data."""
    manifest = package.manifest
    return {
        "path": str(package.path),
        "format": manifest["format"],
        "identity": package.identity.hex(),
        "file_size": package.raw.file_size,
        "package": _jsonable(manifest["package"]),
        "models": _jsonable(manifest["models"]),
        "vectors": [_vector_summary(package, v) for v in manifest.get("vectors", [])],
        "mappings": [_mapping_summary(package, m) for m in manifest.get("mappings", [])],
        "correspondences": _jsonable(manifest.get("correspondences", [])),
        "provenance": _jsonable(manifest["provenance"]),
        "extensions": sorted(manifest.get("extensions", {})),
        "critical": list(manifest.get("critical", [])),
        "signatures": [
            {"alg": s.alg, "keyid": s.keyid.hex(), "status": "unverified"} for s in package.signatures
        ],
    }


# ---------------------------------------------------------------- text rendering


def _site(site: Mapping[str, Any]) -> str:
    """mindvec's name, and TransformerLens' hook name beside it where it has one."""
    parsed = Site.from_dict(site)
    other = transformer_lens(parsed)
    return esc(str(parsed)) + (f" ({other})" if other else "")


def _value(value: Any) -> str:
    """A number as %.4g; anything else (a key a newer minor version added, R-80) as escaped text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.4g}"
    return esc(str(value), 60)


def _metrics(metrics: Mapping[str, Any]) -> str:
    return " ".join(f"{esc(k)}={_value(v)}" for k, v in sorted(metrics.items()))


def _render_package(s: Mapping[str, Any]) -> list[str]:
    p = s["package"]
    return [
        f"package      {esc(p['id'])}  version {p['version']}",
        f"name         {esc(p['name'])}",
        f"description  {esc(p['description'])}",
        f"effect       {esc(p['intended_effect'])}",
        f"identity     {s['identity']}",
        f"format       {esc(s['format'])}  ({s['file_size']} bytes)",
    ]


def _render_models(s: Mapping[str, Any]) -> list[str]:
    lines = ["", "models:"]
    for name, m in s["models"].items():
        source = m["source"]
        detail = {"hf": "repo", "gguf": "quantization", "local": "note"}.get(source["kind"], "kind")
        text = f"  {esc(name)}: {esc(m['model_type'])}  hidden {m['hidden_size']}  layers {m['num_layers']}"
        if "num_encoder_layers" in m:
            text += f"  encoder layers {m['num_encoder_layers']}"
        text += f"  source {esc(source['kind'])} {esc(str(source.get(detail, '')))}"
        if "revision" in source:
            text += f"@{esc(source['revision'])}"
        lines.append(text)
    return lines


def _render_vectors(s: Mapping[str, Any]) -> list[str]:
    lines = ["", f"vectors: {len(s['vectors'])}"]
    for v in s["vectors"]:
        low, high = v["scale_range"]
        lines.append(
            f"  {esc(v['name'])}  model {esc(v['model'])}  operation {esc(v['operation'])}  "
            f"scale {v['scale']:g} (range {low:g}..{high:g})  positions {esc(str(v['positions']))}  "
            f"method {esc(v['method']['kind'])}"
        )
        for e in v["sites"]:
            cal = e["calibration"]
            lines.append(
                f"    {_site(e['site'])}  norm {e['norm']:.4g}  {e['dtype']} {e['shape']}  "
                f"site mean norm {cal['mean_norm']:.4g} ({cal['tokens']} tokens)  tensor {esc(e['tensor'])}"
            )
        if "translation" in v:
            t = v["translation"]
            rule = str(t.get("rule", "mean_norm"))
            lines.append(
                f"    translated from {esc(t['source_model'])} via {esc(t['mapping'])}: "
                f"norm ratio {t['norm_ratio']:.4g}, recommended scale {t['recommended_scale']:.4g}"
                f" (rule {esc(rule)}: {RULE_TEXT.get(rule, '?')})"
            )
    return lines


#: how each translation rule derives the target norm n* (spec 6.1, R-94)
RULE_TEXT = {
    "ridge_r2": "n* = |W(v + α Σ⁺v)| less its sampling noise (the least-squares image of v), / √R² held out",
    "map_r2": "n* = |W v| / √R² held out",
    "ridge_gain": "n* = |W(v + α Σ⁺v)| less its sampling noise, the unshrunk ridge map's image of v",
    "map_gain": "n* = |W v|",
    "mean_norm": "1.0's n* = |v|·c_tgt/c_src",
}


def _render_mappings(s: Mapping[str, Any]) -> list[str]:
    lines = ["", f"mappings: {len(s['mappings'])}"]
    for m in s["mappings"]:
        src, tgt, fit = m["source"], m["target"], m["fit"]
        lines.append(
            f"  {esc(m['name'])}  {esc(src['model'])}:{_site(src['site'])} -> "
            f"{esc(tgt['model'])}:{_site(tgt['site'])}  form {esc(m['form'])}"
            + (f" scale {m['scale']:.4g}" if "scale" in m else "")
        )
        shapes = ", ".join(f"{esc(role)} {t['dtype']} {t['shape']}" for role, t in m["tensors"].items())
        lines.append(f"    tensors  {shapes}")
        lines.append(
            f"    fit      {esc(fit['method'])}  pairing {esc(fit['pairing'])}  dataset "
            f"{esc(fit['dataset']['name'])} ({fit['dataset']['samples']} samples)"
        )
        metrics = m["metrics"]
        lines.append(
            f"    held-out {_metrics(metrics['held_out'])}  "
            f"(train {metrics['train_samples']}, test {metrics['test_samples']})"
        )
        for name, baseline in sorted(metrics.get("baselines", {}).items()):
            lines.append(f"    baseline {esc(name)}: {_metrics(baseline)}")
        if "shrinkage" in m:
            sh = m["shrinkage"]
            lines.append(
                f"    shrinkage alpha {sh['alpha']:.4g}  residual variance {sh['residual_variance']:.4g}"
                f"  samples {sh['samples']} (a translation undoes the ridge's shrinkage)"
            )
    return lines


def _render_correspondences(s: Mapping[str, Any]) -> list[str]:
    items = s["correspondences"]
    lines = ["", f"correspondences: {len(items)}"]
    for c in items[:MAX_CORRESPONDENCE_LINES]:
        lines.append(
            f"  {esc(c['source']['model'])}:{_site(c['source']['site'])} -> "
            f"{esc(c['target']['model'])}:{_site(c['target']['site'])}  {esc(c['metric'])} {c['score']:.4g}"
        )
    if len(items) > MAX_CORRESPONDENCE_LINES:
        lines.append(f"  ... {len(items) - MAX_CORRESPONDENCE_LINES} more (use --json)")
    return lines


def _render_provenance(s: Mapping[str, Any]) -> list[str]:
    p = s["provenance"]
    lines = [
        "",
        "provenance:",
        f"  creator {esc(p['creator'])}  created {esc(p['created'])}  license {esc(p['license'])}",
        f"  tool    {esc(p['tool']['name'])} {esc(p['tool']['version'])}",
    ]
    for d in p.get("datasets", []):
        lines.append(f"  dataset {esc(d['name'])} ({d['samples']} samples) sha256 {d['sha256']}")
    for parent in p.get("parents", []):
        label = f" {esc(parent['package_id'])}" if "package_id" in parent else ""
        lines.append(f"  parent  {esc(parent['role'])}{label} {parent['id']}")
    if "imported" in p:
        im = p["imported"]
        shift = f", layers shifted by {im['layer_shift']}" if im.get("layer_shift") else ""
        name = f" {esc(im['file'])}" if "file" in im else ""
        lines.append(
            f"  imported from {esc(im['format'])} file{name} (tool {esc(im['tool'])}{shift})"
            f" sha256 {im['sha256']}"
        )
    for role, record in sorted((p.get("inputs") or {}).items()):
        signers = ", ".join(record["signers"]) or "none"
        lines.append(
            f"  input   {esc(role)} {record['identity']}: {esc(record['verdict'])} (signers {signers})"
        )
    return lines


def _render_extensions(s: Mapping[str, Any]) -> list[str]:
    if not s["extensions"]:
        return []
    critical = set(s["critical"])
    names = [esc(n) + (" (critical)" if n in critical else "") for n in s["extensions"]]
    return ["", "extensions: " + ", ".join(names)]


def _render_signatures(s: Mapping[str, Any]) -> list[str]:
    sigs = s["signatures"]
    lines = ["", f"signatures: {len(sigs)} (unverified; run `mindvec verify` to check them)"]
    lines += [f"  {esc(x['alg'])} keyid {x['keyid']}  unverified" for x in sigs]
    return lines


_SECTIONS: tuple[Callable[[Mapping[str, Any]], list[str]], ...] = (
    _render_package,
    _render_models,
    _render_vectors,
    _render_mappings,
    _render_correspondences,
    _render_provenance,
    _render_extensions,
    _render_signatures,
)


def render(summary: Mapping[str, Any]) -> list[str]:
    """The text form of :func:`summarize`'s output."""
    return [line for section in _SECTIONS for line in section(summary)]
