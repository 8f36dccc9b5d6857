"""A bounded, deterministic fuzz run: fixed seed, fixed number of inputs, cost counted not timed.

    python -m fuzz.bounded [--seed 0] [--inputs 400] [--targets package,trust,...] [--out DIR]

Each input is a mutant of a seed from the conformance cases (:mod:`fuzz.corpus`), made by
:mod:`fuzz.mutate` from one ``random.Random(seed)``: the same arguments give the same inputs.
The run fails (exit 1) on

* any exception that is not a mindvec error, and any differential disagreement
  (:mod:`fuzz.targets`);
* an input whose work is not linear in its size: Python function calls, counted with
  ``sys.setprofile``, above ``CALLS_PER_BYTE * len(input) + CALLS_BASE``;
* memory: the run sets ``RLIMIT_AS`` to what the process holds after start-up plus a margin,
  so an allocation that grows with a hostile length raises MemoryError, which is a finding.

It prints one JSON object: inputs run per target, findings, and the largest calls per byte.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fuzz.corpus import seeds
from fuzz.mutate import mutate
from fuzz.targets import TARGETS, Finding, cleanup
from mindvec.errors import MindvecError

#: the linear bound on work per input (Python-level calls); measured work is far below it
CALLS_PER_BYTE = 40
CALLS_BASE = 400_000
MEMORY_MARGIN_MIB = 1024


def _address_space_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def limit_memory(margin_mib: int) -> int:
    """Cap the address space at its current size plus ``margin_mib``; returns the cap."""
    cap = _address_space_bytes() + margin_mib * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    return cap


class CallCounter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, frame: Any, event: str, arg: Any) -> None:
        if event in ("call", "c_call"):
            self.calls += 1


def run_one(target: str, data: bytes) -> tuple[int, str | None]:
    """(calls, finding or None) for one input."""
    counter = CallCounter()
    sys.setprofile(counter)
    try:
        TARGETS[target](data)
        finding = None
    except (Finding, MemoryError, RecursionError) as exc:
        finding = f"{type(exc).__name__}: {exc}"
    except MindvecError:
        finding = None  # a target that lets one through has already decided it is an answer
    except Exception as exc:  # noqa: BLE001 - any other exception is exactly what we look for
        finding = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}"
    finally:
        sys.setprofile(None)
    if finding is None and counter.calls > CALLS_PER_BYTE * len(data) + CALLS_BASE:
        finding = f"work not linear: {counter.calls} calls for {len(data)} bytes"
    return counter.calls, finding


def run(seed: int, inputs: int, targets: Sequence[str], out: Path | None, margin_mib: int) -> dict[str, Any]:
    rng = random.Random(seed)
    pools = seeds()
    cap = limit_memory(margin_mib)
    counts = {t: 0 for t in targets}
    findings: list[dict[str, Any]] = []
    worst = 0.0
    for index in range(inputs):
        target = targets[index % len(targets)]
        data = rng.choice(pools[target])
        for _ in range(rng.randint(1, 3)):
            data = mutate(target, data, rng)
        calls, finding = run_one(target, data)
        counts[target] += 1
        worst = max(worst, calls / max(1, len(data)))
        if finding is not None:
            findings.append({"target": target, "input": index, "size": len(data), "finding": finding[:2000]})
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                (out / f"{target}-{index:06d}.bin").write_bytes(data)
    cleanup()
    return {
        "seed": seed,
        "inputs": counts,
        "findings": findings,
        "max_calls_per_byte": round(worst, 2),
        "address_space_cap_mib": cap // 2**20,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz.bounded", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--inputs", type=int, default=400)
    parser.add_argument(
        "--targets", default=",".join(TARGETS), help=f"comma-separated, of {', '.join(TARGETS)}"
    )
    parser.add_argument("--out", type=Path, help="save each input that gave a finding here")
    parser.add_argument("--memory-margin-mib", type=int, default=MEMORY_MARGIN_MIB)
    args = parser.parse_args(argv)
    targets = [t for t in args.targets.split(",") if t]
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown:
        parser.error(f"unknown targets {unknown}")
    report = run(args.seed, args.inputs, targets, args.out, args.memory_margin_mib)
    print(json.dumps(report, indent=1))
    return 1 if report["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
