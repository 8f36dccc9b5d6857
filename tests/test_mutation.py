"""The suite kills its mutants: the reference reader with one rule dropped or one order swapped.

Each mutant runs, in this process, against the cases that cite its requirements. A survivor
is a reading of the spec the suite lets through; the only ones allowed are listed below with
the reason, and the list must stay exact (a survivor that gets killed must leave it).
"""

from __future__ import annotations

import pytest

from conformance_tests import mutation
from conformance_tests.runner import load_cases

#: mutant -> why no case kills it
KNOWN_SURVIVORS = {
    "no-manifest-bound": "Equivalent on any one-defect file here: the canonical decoder refuses input over "
    "MAX_MANIFEST with the same code (bounds); only a 16 MiB file with a second step-1 defect after the "
    "bounds would tell them apart, and the suite has no such recipe case yet.",
    "no-header-bound": "R-40's limit of 100 MB differs from its second clause (8 + N <= payload_len, same "
    "code) only on a payload larger than 100 MB; no recipe case that large yet.",
    "no-header-brace": "An equivalent mutant in this implementation: the JSON decoder refuses a header that "
    "does not start with a JSON value, and the object check one that is not an object, with the same code.",
    "times-any-digits": "An equivalent mutant in this implementation: the compact time pattern takes [0-9] "
    "only and datetime.fromisoformat refuses other digits, so the explicit ASCII check is not observable.",
    "nan-allowed": "An equivalent mutant in this implementation: the canonical re-encoder refuses a "
    "non-finite float with the same code (msgpack), so R-18's own check is not observable here.",
}


@pytest.fixture(scope="module")
def cases() -> list[mutation.Case]:
    return load_cases(mutation.CASES_DIR)


@pytest.mark.parametrize("mutant", mutation.MUTANTS, ids=lambda m: m.name)
def test_mutant_is_killed_by_the_cases_that_cite_its_rule(mutant: mutation.Mutant, cases: list) -> None:
    dead = mutation.killers(mutant, cases)
    if mutant.name in KNOWN_SURVIVORS:
        assert dead == [], f"{mutant.name} is now killed by {dead}: remove it from KNOWN_SURVIVORS"
    else:
        assert dead, f"{mutant.name} survives every case citing {mutant.requirements}"


def test_mutants_leave_the_reader_as_it_was(cases: list) -> None:
    """After all mutants ran, the unmutated reader passes every case again."""
    for mutant in mutation.MUTANTS[:3]:
        mutation.killers(mutant, cases)
    failing = [c.id for c in cases if not mutation.run_case(c)[0]]
    assert failing == []


def test_a_mutant_whose_text_is_gone_is_an_error() -> None:
    stale = mutation.Mutant("stale", "mindvec.container", "_check_head", "no such text", "", ("R-1",))
    with pytest.raises(LookupError, match="not found once"):
        with mutation.applied(stale):
            pass
