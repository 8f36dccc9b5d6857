"""The installed wheel, not only the source tree, must carry and find the schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel offline and install it into an isolated target folder."""
    tmp = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
        + ["-q", "-w", str(tmp), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    wheel = next(tmp.glob("mindvec-*.whl"))
    target = tmp / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr
    return target


def test_wheel_finds_schema(installed: Path, tmp_path: Path) -> None:
    code = (
        "import json, mindvec, mindvec.schema as m;"
        "print(json.dumps([mindvec.__file__, str(m.schema_path()), m.load_schema()['title']]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(installed), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    module_file, schema_file, title = json.loads(out.stdout)
    assert module_file.startswith(str(installed)), "imported the source tree, not the wheel"
    assert schema_file.startswith(str(installed / "mindvec" / "schemas"))
    assert title == json.loads((ROOT / "schemas" / "manifest.schema.json").read_text())["title"]


def test_wheel_has_console_script_entry_point(installed: Path) -> None:
    dist_info = next(installed.glob("mindvec-*.dist-info"))
    entry_points = (dist_info / "entry_points.txt").read_text()
    assert "mindvec = mindvec.cli:main" in entry_points


def test_wheel_carries_the_shipped_probes(installed: Path) -> None:
    """``mindvec probe`` reads its default probe concepts from the installed package."""
    shipped = installed / "mindvec" / "fit" / "probes.json"
    assert shipped.is_file(), "the wheel lacks mindvec/fit/probes.json"
    assert shipped.read_bytes() == (ROOT / "mindvec" / "fit" / "probes.json").read_bytes()
