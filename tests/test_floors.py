"""The floors in pyproject.toml are true: the core and Hub tests pass on exactly those versions.

``scripts/floors.sh`` builds a fresh virtual environment holding the lowest declared versions
(it needs the package registry, like ``scripts/install.sh``) and runs the reader, writer,
verifier and Hub tests there against this source tree.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lowest(*extras: str) -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "lowest.py"), *extras],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(line.split("==") for line in out.split())


def _version_tuple(text: str) -> tuple[int, ...]:
    """``1.24`` and ``1.24.0`` are the same version."""
    parts = [int(part) for part in re.findall(r"\d+", text)[:3]]
    return tuple(parts + [0] * (3 - len(parts)))


def test_every_dependency_declares_a_floor() -> None:
    floors = lowest("torch", "hub", "plot", "dev")
    assert {"safetensors", "msgpack", "pynacl", "jsonschema", "numpy", "filelock"} <= set(floors)
    assert _version_tuple(floors["transformers"]) >= (5, 0)  # the loader needs transformers 5
    assert _version_tuple(floors["huggingface-hub"]) >= (1, 4)


def test_core_and_hub_tests_pass_on_the_lowest_versions() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "floors.sh")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    tail = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, tail
    installed = dict(re.findall(r"^floor (\S+)==(\S+)$", proc.stdout, re.M))
    for name, floor in lowest("hub").items():
        assert _version_tuple(installed[name]) == _version_tuple(floor), (name, installed[name], floor)
    assert re.search(r"^\d+ passed", proc.stdout.splitlines()[-1]), tail
