"""The mutants of the reference reader that :mod:`conformance_tests.mutation` runs, by check step."""

from __future__ import annotations

from conformance_tests.mutants import manifest, payload, structure, trust
from conformance_tests.mutants.mutant import Mutant

MUTANTS: list[Mutant] = [*structure.MUTANTS, *manifest.MUTANTS, *payload.MUTANTS, *trust.MUTANTS]

__all__ = ["MUTANTS", "Mutant"]
