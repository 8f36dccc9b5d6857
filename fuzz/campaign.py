"""A coverage-guided campaign with atheris (libFuzzer), on one target.

    pip install atheris ormsgpack         # or: pip install -e ".[fuzz]"
    python -m fuzz.corpus fuzz-corpus     # seeds from the conformance cases
    python -m fuzz.campaign package fuzz-corpus/package -max_total_time=1800 -rss_limit_mb=2048

Arguments after the target go to libFuzzer. mindvec's modules are instrumented for coverage;
the custom mutator alternates libFuzzer's byte mutations with :mod:`fuzz.mutate` (which
re-signs package mutants, so they get past the signature check). A finding (any exception that
is not a mindvec error, a differential disagreement, MemoryError) stops the run and libFuzzer
writes the input to ``crash-<sha1>``: replay it with ``python -m fuzz.campaign TARGET FILE``.
"""

from __future__ import annotations

import random
import sys

import atheris

with atheris.instrument_imports(include=["mindvec"]):
    # every parsing module, imported here so that atheris instruments it (mindvec's public
    # names load their modules lazily, which would be after instrumentation ends)
    import mindvec.canonical
    import mindvec.container
    import mindvec.manifest
    import mindvec.package
    import mindvec.payload
    import mindvec.policy
    import mindvec.schema
    import mindvec.state
    import mindvec.trust
    import mindvec.values
    import mindvec.verification  # noqa: F401
    from fuzz.mutate import mutate
    from fuzz.targets import TARGETS
    from mindvec.errors import MindvecError


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        raise SystemExit(f"usage: python -m fuzz.campaign {{{','.join(TARGETS)}}} [libFuzzer args]")
    name = sys.argv.pop(1)
    target = TARGETS[name]

    def one(data: bytes) -> None:
        try:
            target(data)
        except MindvecError:
            pass  # an answer, not a finding

    def mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        if rng.random() < 0.5:
            return bytes(atheris.Mutate(data, max_size))
        return mutate(name, data, rng)[:max_size]

    atheris.Setup(sys.argv, one, custom_mutator=mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
