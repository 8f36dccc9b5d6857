"""The bounded fuzz run (fuzz/bounded.py) finds nothing, and its checks can find something."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_bounded_run_finds_nothing(tmp_path: Path) -> None:
    """Issue 13: a fixed seed and 2000 inputs over every parser; any non-mindvec exception,
    differential disagreement, non-linear work or MemoryError under RLIMIT_AS fails it."""
    proc = subprocess.run(
        [sys.executable, "-m", "fuzz.bounded", "--seed", "0", "--inputs", "2000", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["findings"] == [], report["findings"][:3]
    from fuzz.targets import TARGETS

    assert set(report["inputs"]) == set(TARGETS)  # the importers of other tools' files too
    assert all(count == 2000 // len(TARGETS) for count in report["inputs"].values()), report["inputs"]


def test_the_same_seed_gives_the_same_inputs() -> None:
    from fuzz.corpus import seeds
    from fuzz.mutate import mutate

    pool = seeds()["package"]

    def inputs(seed: int) -> list[bytes]:
        rng = random.Random(seed)
        return [mutate("package", rng.choice(pool), rng) for _ in range(20)]

    assert inputs(3) == inputs(3) != inputs(4)


def test_a_resigned_mutant_passes_the_signature_check() -> None:
    """The structure-aware mutator signs with the fuzz key, so its mutants reach step 3 and on."""
    import mindvec
    from fuzz import targets
    from fuzz.corpus import seeds
    from fuzz.mutate import resign

    rng = random.Random(1)
    codes = set()
    for seed in seeds()["package"][:60]:
        path = targets._file("m.mindvec", resign(seed, rng))
        report = mindvec.verify(path, mindvec.Policy(trust=targets.TRUST, now=targets.NOW), detached=False)
        codes.add(report.error.code if report.error else "verified")
    assert codes & {"verified", "schema", "digest-mismatch", "tensor-reference", "shape", "site"}


def test_the_differential_check_catches_a_lax_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Put finding 13 back (accept "-0" in the header): the safetensors comparison must flag it."""
    import mindvec
    from fuzz import targets
    from mindvec import payload
    from tests import factories

    data = factories.unchecked_package(*factories.vector_manifest())
    good = mindvec.open(factories.write_bytes(targets._scratch, data, "good.mindvec"))
    header = good.header.header_bytes
    assert b'"data_offsets":[0,' in header
    lax = header.replace(b'"data_offsets":[0,', b'"data_offsets":[-0,', 1)[:-1]  # keep N: drop a space
    monkeypatch.setattr(payload, "_plain_int", int)  # the old, lax reader
    manifest = {k: v for k, v in good.manifest.items() if k not in ("format",)}
    manifest["payload"] = {**manifest["payload"], "header_sha256": payload.header_digest(lax)}
    from mindvec import canonical

    start = good.raw.layout.payload_offset + 8
    blob = bytearray(data)
    blob[start : start + len(lax)] = lax
    new_manifest = canonical.encode({**manifest, "format": "1.0"})
    parts = factories.assemble(
        new_manifest, bytes(blob[good.raw.layout.payload_offset : good.raw.layout.sig_offset])
    )
    with pytest.raises(targets.Finding, match="safetensors"):
        targets.package_target(parts)
