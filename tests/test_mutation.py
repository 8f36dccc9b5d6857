"""The suite kills its mutants: the reference reader with one rule dropped or one order swapped.

Each mutant runs, in this process, against the cases that cite its requirements, and must fail
at least one of them. The few equivalent edits (another check of the reference reader refuses
the same inputs with the same code) are listed in ``conformance_tests.mutants.EQUIVALENT`` with
the reason, and must pass every case, which is what makes them equivalent.
"""

from __future__ import annotations

import pytest

from conformance_tests import mutation
from conformance_tests.mutants import ALL, EQUIVALENT
from conformance_tests.runner import load_cases


@pytest.fixture(scope="module")
def cases() -> list[mutation.Case]:
    return load_cases(mutation.CASES_DIR)


@pytest.mark.parametrize("mutant", mutation.MUTANTS, ids=lambda m: m.name)
def test_mutant_is_killed_by_the_cases_that_cite_its_rule(mutant: mutation.Mutant, cases: list) -> None:
    assert mutation.killers(mutant, cases), f"{mutant.name} survives every case citing {mutant.requirements}"


@pytest.mark.parametrize("name", sorted(EQUIVALENT))
def test_an_equivalent_mutant_passes_every_case(name: str, cases: list) -> None:
    [mutant] = [m for m in ALL if m.name == name]
    everything = mutation.Mutant(mutant.name, mutant.module, mutant.function, mutant.old, mutant.new, ())
    with mutation.applied(everything):
        failing = [c.id for c in cases if not mutation.run_case(c)[0]]
    assert failing == [], f"{name} is not equivalent: {failing} kill it; move it back into MUTANTS"
    assert EQUIVALENT[name].strip()


def test_mutants_leave_the_reader_as_it_was(cases: list) -> None:
    """After mutants ran, the unmutated reader passes every case again."""
    for mutant in mutation.MUTANTS[:3]:
        mutation.killers(mutant, cases)
    failing = [c.id for c in cases if not mutation.run_case(c)[0]]
    assert failing == []


def test_a_mutant_whose_text_is_gone_is_an_error() -> None:
    stale = mutation.Mutant("stale", "mindvec.container", "_check_head", "no such text", "", ("R-1",))
    with pytest.raises(LookupError, match="not found once"):
        with mutation.applied(stale):
            pass
