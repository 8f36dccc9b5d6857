"""Benchmark: full verification vs. one stream of sha256, and signature-only opening.

Builds, in a temporary folder, a signed package with ``--size-mib`` MiB of float32
tensors (default 1024: 1 GiB, split into 4 MiB vector tensors so they can be hashed
in parallel) and a 1 MiB package, then prints:

1. full verification (``mindvec.verify``: structure, signature, header, every
   tensor digest, trust) as a ratio to ``hashlib.sha256`` over the same file bytes,
   measured in the same run, interleaved A B A B; goal <= 1.3x.
2. opening and verifying only the signature (``container.read_raw`` + the Ed25519
   check of the PAE over the manifest) for the big package as a ratio to the same for
   the 1 MiB package; goal: flat (about 1x), independent of payload size.

Runs are interleaved and reported as median [min..max]. The file is in the page cache
for both sides (a warm-up pass of each runs first), so this measures CPU, not disk.

    python benchmarks/bench_verify.py --size-mib 256 --repeats 5
"""

from __future__ import annotations

import argparse
import hashlib
import mmap
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mindvec import container, package
from mindvec.keys import SecretKey
from mindvec.policy import Policy, SignatureResult, check_signatures
from mindvec.trust import TrustEntry, TrustStore
from mindvec.verification import verify

TENSOR_MIB = 4
HIDDEN = TENSOR_MIB * 2**20 // 4  # float32 elements in one 4 MiB tensor


def manifest_for(hidden: int, layers: int) -> dict[str, Any]:
    return {
        "package": {
            "id": "bench/verify",
            "version": 1,
            "name": "bench",
            "description": "benchmark package",
            "intended_effect": "none",
        },
        "models": {
            "m": {
                "model_type": "llama",
                "hidden_size": hidden,
                "num_layers": max(layers + 1, 2),
                "source": {"kind": "local", "note": "benchmark"},
            }
        },
        "vectors": [
            {
                "name": "v",
                "model": "m",
                "operation": "add",
                "scale": 1.0,
                "scale_range": [0.0, 2.0],
                "positions": "all",
                "sites": [
                    {
                        "site": {"stack": "decoder", "layer": layer, "point": "resid_post"},
                        "tensor": f"v.{layer}",
                        "calibration": {"mean_norm": 1.0, "tokens": 1},
                    }
                    for layer in range(layers)
                ],
                "method": {"kind": "random"},
            }
        ],
        "provenance": {
            "creator": "bench",
            "created": "2026-01-01T00:00:00Z",
            "tool": {"name": "mindvec", "version": "0.1.0"},
            "license": "Apache-2.0",
        },
    }


def build(path: Path, size_mib: int, key: SecretKey, tensors_count: int | None = None) -> Path:
    """A package of ``size_mib`` MiB of float32 tensors: 4 MiB each, or ``tensors_count`` equal ones."""
    if tensors_count is not None:
        hidden, layers = size_mib * 2**20 // 4 // tensors_count, tensors_count
    elif size_mib >= TENSOR_MIB:
        hidden, layers = HIDDEN, size_mib // TENSOR_MIB
    else:
        hidden, layers = size_mib * 2**20 // 4, 1
    rng = np.random.default_rng(0)
    base = rng.standard_normal(hidden).astype(np.float32)
    # distinct tensors without generating gigabytes of random numbers
    tensors = {f"v.{layer}": base + np.float32(layer) for layer in range(layers)}
    return package.write(path, manifest_for(hidden, layers), tensors, signers=[key])


def sha256_file(path: Path) -> bytes:
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        return hashlib.sha256(mapped).digest()


def signature_only(path: Path, store: TrustStore) -> None:
    raw = container.read_raw(path)
    out: list[SignatureResult] = []
    check_signatures(raw.manifest_bytes, [(e, "embedded") for e in raw.signatures], store, out)
    assert out and all(r.valid for r in out)


def interleave(
    a: Callable[[], object], b: Callable[[], object], repeats: int
) -> tuple[list[float], list[float]]:
    a(), b()  # warm-up: page cache, imports, thread pools
    times_a: list[float] = []
    times_b: list[float] = []
    for _ in range(repeats):
        for fn, times in ((a, times_a), (b, times_b)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return times_a, times_b


def fmt(times: list[float], unit: float = 1.0, suffix: str = "s") -> str:
    return f"{statistics.median(times) * unit:.4g}{suffix} [{min(times) * unit:.4g}..{max(times) * unit:.4g}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=1024, help="payload size in MiB (default 1024)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds for full verification")
    parser.add_argument("--sig-repeats", type=int, default=200, help="rounds for signature-only opening")
    parser.add_argument("--dir", help="folder for the temporary packages (default: system temp)")
    args = parser.parse_args(argv)

    key = SecretKey.generate("bench")
    store = TrustStore([TrustEntry("bench", key.public_key)])
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        start = time.perf_counter()
        big = build(Path(folder) / "big.mindvec", args.size_mib, key)
        small = build(Path(folder) / "small.mindvec", 1, key)
        count = max(1, args.size_mib // TENSOR_MIB)
        twin = build(Path(folder) / "twin.mindvec", 1, key, tensors_count=count)
        size = os.path.getsize(big)
        print(f"built {size / 2**20:.1f} MiB package ({args.size_mib // TENSOR_MIB or 1} tensors) "
              f"and {os.path.getsize(small) / 2**20:.2f} MiB package in {time.perf_counter() - start:.1f}s; "
              f"cpus={os.cpu_count()} python={sys.version.split()[0]}")  # fmt: skip

        def full() -> None:
            report = verify(big, detached=False, policy=Policy(trust=store))
            assert report.verdict == "verified", report.error

        t_verify, t_sha = interleave(full, lambda: sha256_file(big), args.repeats)
        ratio = statistics.median(t_verify) / statistics.median(t_sha)
        per_round = [v / s for v, s in zip(t_verify, t_sha, strict=True)]
        print(f"full verify      {fmt(t_verify)}")
        print(f"sha256 (1 stream) {fmt(t_sha)}  = {size / statistics.median(t_sha) / 2**20:.0f} MiB/s")
        spread = f"per-round {min(per_round):.3f}..{max(per_round):.3f}"
        print(f"RATIO full verify / sha256 = {ratio:.3f}x ({spread}; goal <= 1.3x)")

        t_big, t_small = interleave(
            lambda: signature_only(big, store), lambda: signature_only(small, store), args.sig_repeats
        )
        sig_ratio = statistics.median(t_big) / statistics.median(t_small)
        print(f"signature only, {args.size_mib} MiB package {fmt(t_big, 1e3, 'ms')}")
        print(f"signature only, 1 MiB package   {fmt(t_small, 1e3, 'ms')}")
        print(f"RATIO signature-only big / 1 MiB = {sig_ratio:.3f}x (goal: about 1x, flat)")

        # The signed manifest lists every tensor's digest, so its size follows the tensor
        # count, not the payload size; a 1 MiB package with as many tensors isolates that.
        t_big, t_twin = interleave(
            lambda: signature_only(big, store), lambda: signature_only(twin, store), args.sig_repeats
        )
        sizes = [len(container.read_raw(p).manifest_bytes) for p in (big, small, twin)]
        print(f"manifest bytes: big {sizes[0]}, 1 MiB {sizes[1]}, 1 MiB with {count} tensors {sizes[2]}")
        print(f"signature only, 1 MiB package with {count} tensors {fmt(t_twin, 1e3, 'ms')}")
        twin_ratio = statistics.median(t_big) / statistics.median(t_twin)
        print(f"RATIO signature-only big / 1 MiB same tensor count = {twin_ratio:.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
