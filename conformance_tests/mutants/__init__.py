"""The mutants of the reference reader that :mod:`conformance_tests.mutation` runs, by check step.

``MUTANTS`` must all be killed. ``EQUIVALENT`` names the edits that no input can tell apart from
the reference reader, because another check of it refuses the same inputs with the same code;
they are kept, with the reason, and a test checks that every case passes them.
"""

from __future__ import annotations

from conformance_tests.mutants import manifest, payload, structure, trust
from conformance_tests.mutants.mutant import Mutant

ALL: list[Mutant] = [*structure.MUTANTS, *manifest.MUTANTS, *payload.MUTANTS, *trust.MUTANTS]

#: mutant -> why it is equivalent (another check refuses the same inputs with the same code)
EQUIVALENT: dict[str, str] = {
    "nan-allowed": "the canonical re-encoder (R-22's check) refuses a non-finite float with the same code, "
    "msgpack, so R-18's own check is defence in depth",
    "no-header-brace": "the JSON decoder refuses a header that does not start with a JSON value, and the "
    "object check one whose value is not an object, with the same code, payload",
    "times-any-digits": "the time patterns take [0-9] only and datetime.fromisoformat refuses other digits, "
    "so the explicit ASCII check is defence in depth",
}

MUTANTS: list[Mutant] = [m for m in ALL if m.name not in EQUIVALENT]

__all__ = ["ALL", "EQUIVALENT", "MUTANTS", "Mutant"]
