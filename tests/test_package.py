"""Package: open, lazy tensors with digest checks, integrity, atomic deterministic writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import mindvec
from tests import factories


def test_round_trip_small_package(tmp_path: Path) -> None:
    manifest, tensors = factories.full_manifest()
    path = mindvec.write(tmp_path / "a.mindvec", manifest, tensors)
    package = mindvec.open(path)
    for name, array in tensors.items():
        np.testing.assert_array_equal(package.tensor(name), array)
    package.check_integrity()
    assert package.manifest["format"] == "1.0"
    assert package.vector().name == "v"
    assert package.mapping().form == "affine"
