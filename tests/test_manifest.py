"""Manifest: JSON Schema with the custom types, semantic rules, header consistency, views."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mindvec
from mindvec import canonical, schema
from mindvec import manifest as mf
from mindvec import shapes as shape_rules
from mindvec.container import align64
from mindvec.errors import MindvecError
from mindvec.payload import TensorInfo
from mindvec.site import Site
from tests import factories
from tests.factories import clone


def _full(manifest: dict[str, Any]) -> dict[str, Any]:
    """Add format and fake payload digests for every referenced tensor."""
    full = clone(manifest)
    full["format"] = "1.0"
    names = mf.referenced_tensors(full)
    full["payload"] = {"header_sha256": bytes(32), "tensors": {name: bytes(32) for name in names}}
    return full


def _code(manifest: dict[str, Any], version: tuple[int, int] = (1, 0)) -> str:
    with pytest.raises(MindvecError) as info:
        mf.validate(manifest, version)
    return info.value.code


def _base() -> dict[str, Any]:
    return _full(factories.full_manifest()[0])


def test_valid_manifests() -> None:
    mf.validate(_base())
    mf.validate(_full(factories.minimal_manifest()))


# ---------------------------------------------------------------- schema


@pytest.mark.req("R-23")
def test_schema_unknown_missing_wrong_type() -> None:
    """Unknown core key, missing required key, wrong type: each is `schema`. [R-23]"""
    unknown = _base()
    unknown["colour"] = "blue"
    assert _code(unknown) == "schema"
    nested_unknown = _base()
    nested_unknown["package"]["homepage"] = "x"
    assert _code(nested_unknown) == "schema"
    missing = _base()
    del missing["provenance"]
    assert _code(missing) == "schema"
    missing_nested = _base()
    del missing_nested["models"]["m"]["hidden_size"]
    assert _code(missing_nested) == "schema"
    wrong = _base()
    wrong["package"]["version"] = "1"
    assert _code(wrong) == "schema"
    assert _code([]) == "schema"  # type: ignore[arg-type]


@pytest.mark.req("R-24", "R-25")
@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("models", "m", "hidden_size"), 8.0),  # integral float is not an integer
        (("models", "m", "hidden_size"), True),  # bool is not an integer
        (("vectors", 0, "scale"), True),  # bool is not a number
        (("package", "version"), -1),
        (("payload", "header_sha256"), "00" * 32),  # hex string is not bytes
        (("payload", "header_sha256"), bytes(31)),  # byteLength
        (("models", "m", "config_sha256"), bytes(33)),
        (("models", "m", "source"), {"kind": "hf", "repo": "a/b", "revision": "0" * 40 + "\n"}),
        (("provenance", "created"), "2026-01-01T00:00:00Z\n"),
        (("vectors", 0, "positions"), -1),
    ],
)
def test_custom_types(path: tuple[Any, ...], value: Any) -> None:
    """`integer` excludes floats and bools, `number` excludes bools, `bytes` is bin of byteLength;
    `$` does not match before a final newline. [R-24] [R-25]"""
    manifest = _base()
    target: Any = manifest
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert _code(manifest) == "schema"


@pytest.mark.req("R-3", "R-80")
def test_forward_compatible_minor(tmp_path: Path) -> None:
    """A 1.2 package with unknown keys is read with additionalProperties relaxed. [R-3] [R-80]"""
    manifest, tensors = factories.full_manifest()
    manifest["format"] = "1.2"
    manifest["future_section"] = {"x": 1}
    manifest["package"]["homepage"] = "https://example.org"
    data = factories.unchecked_package(manifest, tensors, version=(1, 2))
    package = mindvec.open(factories.write_bytes(tmp_path, data))
    package.check_integrity()
    assert package.version == (1, 2)
    assert package.manifest["future_section"] == {"x": 1}
    with pytest.raises(MindvecError) as info:  # 1.0 stays closed
        mf.validate(clone(package.manifest) | {"format": "1.0"}, (1, 0))
    assert info.value.code == "schema"


# ---------------------------------------------------------------- semantic rules


@pytest.mark.req("R-27")
@pytest.mark.parametrize(
    ("fmt", "version"), [("1.1", (1, 0)), ("1.0", (1, 1)), ("01.0", (1, 0)), ("2.0", (1, 0))]
)
def test_format_equals_preamble(fmt: str, version: tuple[int, int]) -> None:
    """`format` equals the preamble version exactly. [R-27]"""
    manifest = _base()
    manifest["format"] = fmt
    assert _code(manifest, version) == "version"


@pytest.mark.req("R-28", "R-81")
def test_critical_extensions() -> None:
    """Unknown critical extensions are rejected; unknown others ignored. [R-28] [R-81]"""
    manifest = _base()
    manifest["extensions"] = {"org.example.ignored": {"any": [1, b"x"]}}
    mf.validate(manifest)
    manifest["critical"] = ["org.example.ignored"]
    assert _code(manifest) == "critical-extension"
    manifest["critical"] = ["org.example.absent"]
    assert _code(manifest) == "critical-extension"


GHOST_TRANSLATION = {"source_model": "ghost", "mapping": "map", "norm_ratio": 1.0, "recommended_scale": 1.0}


@pytest.mark.req("R-29")
@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m["vectors"][0].update(model="ghost"),
        lambda m: m["mappings"][0]["source"].update(model="ghost"),
        lambda m: m["mappings"][0]["target"].update(model="ghost"),
        lambda m: m["correspondences"][0]["target"].update(model="ghost"),
        lambda m: m["vectors"][0].update(
            translation={
                "source_model": "ghost",
                "mapping": "map",
                "norm_ratio": 1.0,
                "recommended_scale": 1.0,
            }
        ),
    ],
)
def test_model_references(edit: Any) -> None:
    """Every model reference names a key of `models`. [R-29]"""
    manifest = _base()
    edit(manifest)
    assert _code(manifest) == "schema"


@pytest.mark.req("R-30")
def test_unique_names() -> None:
    """Vector and mapping names are unique. [R-30]"""
    manifest = _base()
    second = factories.vector_entry(prefix="w")
    manifest["vectors"].append(second)
    manifest["payload"]["tensors"]["w.1"] = bytes(32)
    assert _code(manifest) == "schema"


@pytest.mark.req("R-31", "R-56", "R-58", "R-59")
@pytest.mark.parametrize(
    ("site", "model_extra"),
    [
        (factories.site(layer=4), {}),  # beyond num_layers
        (factories.site(layer=0, stack="encoder"), {}),  # no encoder stack
        (factories.site(layer=3, stack="encoder"), {"num_encoder_layers": 3}),
        (factories.site(layer=2, point="resid_pre"), {}),  # duplicate address form
        (factories.site(layer=1, point="cross_attn_out"), {}),  # decoder-only model
        (factories.site(layer=1, point="cross_attn_out", stack="encoder"), {"num_encoder_layers": 2}),
    ],
)
def test_site_rules(site: dict[str, Any], model_extra: dict[str, Any]) -> None:
    """Layers in range, stacks that exist, resid_pre only at 0, cross_attn_out only in
    encoder-decoder decoders. [R-31] [R-56] [R-58] [R-59]"""
    manifest = _base()
    manifest["models"]["m"].update(model_extra)
    manifest["vectors"][0]["sites"][0]["site"] = site
    assert _code(manifest) == "site"


def test_valid_special_sites() -> None:
    manifest = _base()
    manifest["models"]["m"]["num_encoder_layers"] = 2
    manifest["vectors"][0]["sites"][0]["site"] = factories.site(layer=0, point="resid_pre")
    mf.validate(manifest)
    manifest["vectors"][0]["sites"][0]["site"] = factories.site(layer=3, point="cross_attn_out")
    mf.validate(manifest)
    manifest["vectors"][0]["sites"][0]["site"] = factories.site(layer=1, point="mlp_out", stack="encoder")
    mf.validate(manifest)


@pytest.mark.req("R-57")
def test_same_site_twice() -> None:
    """A vector lists each site once. [R-57]"""
    manifest = _base()
    entry = clone(manifest["vectors"][0]["sites"][0])
    entry["tensor"] = "v.dup"
    manifest["vectors"][0]["sites"].append(entry)
    manifest["payload"]["tensors"]["v.dup"] = bytes(32)
    assert _code(manifest) == "site"


@pytest.mark.req("R-32")
@pytest.mark.parametrize(
    ("form", "roles", "ok"),
    [
        ("linear", {"weight"}, True),
        ("linear", {"weight", "bias"}, False),
        ("affine", {"weight"}, False),
        ("affine", {"weight", "source_mean"}, False),
        ("affine", {"weight", "source_mean", "target_mean"}, True),
        ("orthogonal", {"weight", "bias"}, False),
        ("low_rank", {"u"}, False),
        ("low_rank", {"u", "v", "bias"}, True),
        ("low_rank", {"u", "v", "weight"}, False),
    ],
)
def test_mapping_forms(form: str, roles: set[str], ok: bool) -> None:
    """The tensor key set must be one allowed for the form. [R-32]"""
    manifest = _base()
    manifest["mappings"][0]["form"] = form
    manifest["mappings"][0]["tensors"] = {role: f"map.{role}" for role in roles}
    manifest["payload"]["tensors"] = {name: bytes(32) for name in mf.referenced_tensors(manifest)}
    if ok:
        mf.validate(manifest)
    else:
        assert _code(manifest) == "schema"


@pytest.mark.req("R-32")
def test_scale_only_for_orthogonal() -> None:
    """A mapping `scale` is only allowed with form orthogonal. [R-32]"""
    manifest = _base()
    manifest["mappings"][0]["scale"] = 2.0
    assert _code(manifest) == "schema"
    manifest["mappings"][0]["form"] = "orthogonal"
    manifest["mappings"][0]["tensors"] = {"weight": "map.weight"}
    manifest["payload"]["tensors"].pop("map.bias")
    mf.validate(manifest)


@pytest.mark.req("R-33")
def test_scale_range_order() -> None:
    """scale_range lo <= hi. [R-33]"""
    manifest = _base()
    manifest["vectors"][0]["scale_range"] = [2.0, 1.0]
    assert _code(manifest) == "value"


@pytest.mark.req("R-34")
def test_tensor_references() -> None:
    """Each tensor referenced once; referenced set == payload.tensors keys. [R-34]"""
    double = _base()
    double["mappings"][0]["tensors"]["bias"] = "v.1"
    double["payload"]["tensors"].pop("map.bias")
    assert _code(double) == "tensor-reference"
    extra = _base()
    extra["payload"]["tensors"]["orphan"] = bytes(32)
    assert _code(extra) == "tensor-reference"
    missing = _base()
    missing["payload"]["tensors"].pop("v.1")
    assert _code(missing) == "tensor-reference"


# ---------------------------------------------------------------- header consistency


def _infos(shapes: dict[str, tuple[int, ...]]) -> dict[str, TensorInfo]:
    return {name: TensorInfo(name, "F32", shape, 0, 0) for name, shape in shapes.items()}


GOOD = {"v.1": (8,), "map.weight": (4, 6), "map.bias": (4,)}


@pytest.mark.req("R-52")
@pytest.mark.parametrize(
    "shapes",
    [
        {**GOOD, "v.1": (6,)},
        {**GOOD, "v.1": (8, 1)},
        {**GOOD, "map.weight": (6, 4)},
        {**GOOD, "map.bias": (6,)},
    ],
)
def test_shapes_follow_hidden_sizes(shapes: dict[str, tuple[int, ...]]) -> None:
    """Vector [hidden]; weight [d_out, d_in]; bias [d_out]. [R-52]"""
    shape_rules.check_header(_base(), _infos(GOOD))
    with pytest.raises(MindvecError) as info:
        shape_rules.check_header(_base(), _infos(shapes))
    assert info.value.code == "shape"


@pytest.mark.req("R-52")
@pytest.mark.parametrize(
    ("u", "v", "ok"),
    [
        ((4, 2), (6, 2), True),
        ((4, 4), (6, 4), True),
        ((4, 0), (6, 0), False),
        ((4, 5), (6, 5), False),
        ((4, 2), (6, 3), False),
        ((6, 2), (4, 2), False),
    ],
)
def test_low_rank_shapes(u: tuple[int, int], v: tuple[int, int], ok: bool) -> None:
    """u [d_out, r], v [d_in, r], 1 <= r <= min(d_in, d_out). [R-52]"""
    manifest = _base()
    manifest["mappings"][0].update(form="low_rank", tensors={"u": "map.u", "v": "map.v"})
    manifest["payload"]["tensors"] = {name: bytes(32) for name in mf.referenced_tensors(manifest)}
    infos = _infos({"v.1": (8,), "map.u": u, "map.v": v})
    if ok:
        shape_rules.check_header(manifest, infos)
    else:
        with pytest.raises(MindvecError) as info:
            shape_rules.check_header(manifest, infos)
        assert info.value.code == "shape"


@pytest.mark.req("R-51")
def test_header_names_match_manifest() -> None:
    """Header tensor names == payload.tensors keys. [R-51]"""
    with pytest.raises(MindvecError) as info:
        shape_rules.check_header(_base(), _infos({**GOOD, "stray": (1,)}))
    assert info.value.code == "tensor-reference"


@pytest.mark.req("R-52")
def test_shape_mismatch_in_file(tmp_path: Path) -> None:
    """The same rule end to end: a file whose vector has the wrong length. [R-52]"""
    manifest, tensors = factories.vector_manifest()
    tensors["v.1"] = np.ones(7, dtype=np.float32)
    path = factories.write_bytes(tmp_path, factories.unchecked_package(manifest, tensors))
    with pytest.raises(MindvecError) as info:
        mindvec.open(path)
    assert info.value.code == "shape"


@pytest.mark.req("R-28", "R-58")
def test_semantic_errors_through_open(tmp_path: Path) -> None:
    """Codes reach the caller of open(): resid_pre at layer > 0, unknown critical extension. [R-58] [R-28]"""
    manifest, tensors = factories.vector_manifest()
    manifest["vectors"][0]["sites"][0]["site"] = factories.site(layer=1, point="resid_pre")
    path = factories.write_bytes(tmp_path, factories.unchecked_package(manifest, tensors))
    with pytest.raises(MindvecError) as info:
        mindvec.open(path)
    assert info.value.code == "site"
    manifest, tensors = factories.vector_manifest()
    manifest["extensions"] = {"org.example.x": 1}
    manifest["critical"] = ["org.example.x"]
    path = factories.write_bytes(tmp_path, factories.unchecked_package(manifest, tensors))
    with pytest.raises(MindvecError) as info:
        mindvec.open(path)
    assert info.value.code == "critical-extension"


@pytest.mark.req("R-22", "R-69")
def test_non_canonical_manifest_in_file(tmp_path: Path) -> None:
    """A manifest encoded with unsorted keys is `non-canonical`, before the schema. [R-22] [R-69]"""
    manifest, tensors = factories.vector_manifest()
    good = factories.unchecked_package(manifest, tensors)
    manifest_len = int.from_bytes(good[16:24], "little")
    decoded = canonical.decode(good[32 : 32 + manifest_len])
    reordered = msgpack.packb(dict(reversed(list(decoded.items()))), use_bin_type=True)
    payload_len = int.from_bytes(good[24:32], "little")
    payload_start = align64(32 + manifest_len)
    payload = good[payload_start : payload_start + payload_len]
    path = factories.write_bytes(tmp_path, factories.assemble(reordered, payload))
    with pytest.raises(MindvecError) as info:
        mindvec.open(path)
    assert info.value.code == "non-canonical"


# ---------------------------------------------------------------- views and display


def test_typed_views() -> None:
    manifest = _base()
    models = mf.models(manifest)
    assert models["src"].hidden_size == 6 and models["m"].layers("encoder") is None
    vector = mf.vectors(manifest)[0]
    assert vector.sites[0].site == Site("decoder", 1, "resid_post") and vector.scale_range == (0.0, 8.0)
    mapping = mf.mappings(manifest)[0]
    assert (mapping.source_model, mapping.target_model, mapping.form) == ("src", "tgt", "affine")
    site = Site.from_dict({"stack": "encoder", "layer": 2, "point": "mlp_out"})
    assert Site.from_dict(site.to_dict()) == site and str(site) == "encoder.2.mlp_out"


def test_schema_found_from_package() -> None:
    assert schema.schema_path().name == "manifest.schema.json"
    assert schema.load_schema()["$schema"].endswith("2020-12/schema")


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a manifest."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*prefix, i))
    return found


junk = (
    st.none()
    | st.booleans()
    | st.integers(-5, 10)
    | st.floats(-2, 2)
    | st.text(max_size=3)
    | st.binary(max_size=33)
    | st.lists(st.integers(0, 3), max_size=3)
    | st.dictionaries(st.sampled_from(["x", "layer", "model"]), st.integers(0, 3))
)


@pytest.mark.req("R-23", "R-69")
@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_manifests_only_raise_typed_errors(data: st.DataObject) -> None:
    """Any single replaced or deleted value gives a typed error or a valid manifest, never
    a KeyError/TypeError from the semantic rules. [R-23] [R-69]"""
    manifest = _base()
    path = data.draw(st.sampled_from(_paths(manifest)))
    parent: Any = manifest
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(junk)
    try:
        mf.validate(manifest)
        shape_rules.check_header(manifest, _infos(GOOD))
    except MindvecError:
        pass


def test_a_long_critical_list_costs_linear_work(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Issue 13, finding 1: `critical` = [{}] + n integers made open/verify/inspect quadratic
    (jsonschema compares items pairwise, and every error was collected for best_match). Counted:
    each item is looked at a bounded number of times, and the first error ends validation."""
    calls = {"n": 0}
    real = schema._freeze

    def counting(value: object) -> object:
        calls["n"] += 1
        return real(value)

    monkeypatch.setattr(schema, "_freeze", counting)
    items: list[object] = [{}, *range(6000)]
    errors = list(schema._unique_items(None, True, items, {}))
    assert errors == [] and calls["n"] <= 2 * len(items)
    calls["n"] = 0
    assert len(list(schema._unique_items(None, True, [*range(6000), 5], {}))) == 1
    assert calls["n"] <= 6002
    assert not list(schema._unique_items(None, True, [1, True, {"a": [1]}, {"a": [1.5]}], {}))
    assert list(schema._unique_items(None, True, [1, 1.0], {}))  # JSON Schema: 1 == 1.0
    manifest, tensors = factories.vector_manifest()
    manifest["critical"] = items
    data = factories.unchecked_package(manifest, tensors)
    with pytest.raises(MindvecError) as err:
        mindvec.open(factories.write_bytes(tmp_path, data))
    assert err.value.code == "schema"


@pytest.mark.req("R-90")
def test_a_translation_names_a_mapping_it_holds_or_says_where_it_is() -> None:
    """[R-90] without mapping_package, translation.mapping must be one of the package's mappings."""
    from factories import full_manifest

    man, _ = full_manifest()
    man["format"] = "1.0"
    mapping_name = man["mappings"][0]["name"]
    man["vectors"][0]["translation"] = {
        "source_model": "src",
        "mapping": mapping_name,
        "norm_ratio": 0.8,
        "recommended_scale": 2.0,
    }
    translated = [man["vectors"][0]]
    mf._check_model_refs(man)  # the step-4 rule itself (full_manifest has no payload)
    translated[0]["translation"]["mapping"] = "ghost"
    translated[0]["translation"].pop("mapping_package", None)
    with pytest.raises(mindvec.InvalidError, match="not in this package") as err:
        mf._check_model_refs(man)  # the step-4 rule itself (full_manifest has no payload)
    assert err.value.code == "schema"
    translated[0]["translation"]["mapping_package"] = bytes(32)
    mf._check_model_refs(man)  # the step-4 rule itself (full_manifest has no payload)


@pytest.mark.req("R-91")
@pytest.mark.parametrize("created", ["2026-02-30T00:00:00Z", "2026-01-01T24:00:00Z", "2026-12-31T23:59:60Z"])
def test_provenance_created_must_exist(created: str) -> None:
    """[R-91] the schema's pattern lets these through; the calendar does not."""
    man = {"provenance": {"created": created}}
    with pytest.raises(mindvec.InvalidError) as err:
        mf._check_created(man)
    assert err.value.code == "schema"
    mf._check_created({"provenance": {"created": "2028-02-29T23:59:59Z"}})  # a leap day exists
