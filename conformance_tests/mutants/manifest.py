"""Mutants of step 4: the schema and the semantic rules, dropped or swapped."""

from __future__ import annotations

from conformance_tests.mutants.mutant import SEMANTICS, Mutant, swap

MUTANTS: list[Mutant] = [
    Mutant(
        "no-schema", "mindvec.manifest", "validate", "    validate_schema(manifest, version)\n", "", ("R-23",)
    ),
    Mutant(
        "no-format-check",
        SEMANTICS,
        "check_semantics",
        "    _check_format(manifest, version)\n",
        "",
        ("R-27",),
    ),
    Mutant(
        "no-critical-check", SEMANTICS, "check_semantics", "    _check_critical(manifest)\n", "", ("R-28",)
    ),
    Mutant("no-model-refs", SEMANTICS, "check_semantics", "    _check_model_refs(manifest)\n", "", ("R-29",)),
    Mutant(
        "no-unique-names", SEMANTICS, "check_semantics", "    _check_unique_names(manifest)\n", "", ("R-30",)
    ),
    Mutant("no-site-check", SEMANTICS, "check_semantics", "    _check_sites(manifest)\n", "", ("R-31",)),
    Mutant("no-form-check", SEMANTICS, "check_semantics", "    _check_forms(manifest)\n", "", ("R-32",)),
    Mutant("no-range-check", SEMANTICS, "check_semantics", "    _check_ranges(manifest)\n", "", ("R-33",)),
    Mutant(
        "no-reference-check", SEMANTICS, "check_semantics", "    _check_references(manifest)\n", "", ("R-34",)
    ),
    Mutant("no-layer-bound", SEMANTICS, "check_site", "if site.layer >= layers:", "if False:", ("R-56",)),
    Mutant(
        "resid-pre-anywhere",
        SEMANTICS,
        "check_site",
        'if site.point == "resid_pre" and site.layer > 0:',
        "if False:",
        ("R-58",),
    ),
    Mutant(
        "cross-attn-anywhere",
        SEMANTICS,
        "check_site",
        'if site.point == "cross_attn_out" and (site.stack != "decoder" or model.num_encoder_layers is None)'
        ":",
        "if False:",
        ("R-59",),
    ),
    Mutant(
        "duplicate-sites",
        SEMANTICS,
        "_check_sites",
        "if len(set(addresses)) != len(addresses):",
        "if False:",
        ("R-57",),
    ),
    Mutant(
        "order-refs-before-critical",
        SEMANTICS,
        "check_semantics",
        *swap("_check_critical(manifest)", "_check_model_refs(manifest)"),
        ("R-28", "R-29"),
    ),
    Mutant(
        "order-sites-before-names",
        SEMANTICS,
        "check_semantics",
        *swap("_check_unique_names(manifest)", "_check_sites(manifest)"),
        ("R-30", "R-31"),
    ),
    Mutant(
        "order-forms-before-sites",
        SEMANTICS,
        "check_semantics",
        *swap("_check_sites(manifest)", "_check_forms(manifest)"),
        ("R-31", "R-32"),
    ),
    Mutant(
        "order-references-before-ranges",
        SEMANTICS,
        "check_semantics",
        *swap("_check_ranges(manifest)", "_check_references(manifest)"),
        ("R-33", "R-34"),
    ),
    Mutant(
        "translation-mapping-unchecked",
        SEMANTICS,
        "_check_model_refs",
        'if translation and "mapping_package" not in translation and translation["mapping"] not in held:',
        "if False:",
        ("R-90",),
    ),
    Mutant(
        "created-not-a-calendar-time",
        SEMANTICS,
        "check_semantics",
        "    _check_created(manifest)\n",
        "",
        ("R-91",),
    ),
    Mutant(
        "order-ranges-before-model-refs",
        SEMANTICS,
        "check_semantics",
        "    _check_model_refs(manifest)\n",
        "    _check_ranges(manifest)\n    _check_model_refs(manifest)\n",
        ("R-29", "R-33"),
    ),
    Mutant(
        "order-references-before-sites",
        SEMANTICS,
        "check_semantics",
        "    _check_sites(manifest)\n",
        "    _check_references(manifest)\n    _check_sites(manifest)\n",
        ("R-31", "R-34"),
    ),
    Mutant(
        "order-format-before-schema",
        SEMANTICS,
        "validate",
        "    validate_schema(manifest, version)\n",
        "    _check_format(manifest, version)\n    validate_schema(manifest, version)\n",
        ("R-23", "R-27"),
    ),
]
