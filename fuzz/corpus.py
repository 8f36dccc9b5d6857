"""The seed corpus, built from the conformance cases (nothing is checked in).

Every case's package, trust store and state file seeds its target; key files and rotation
records come from the suite's test keys and a fresh rotation. ``python -m fuzz.corpus DIR``
writes them as files for a long atheris campaign.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fuzz.targets import FUZZ_KEY
from mindvec.keys import SecretKey
from mindvec.rotation import RotationRecord

SUITE = Path(__file__).resolve().parent.parent / "conformance_tests"


def seeds() -> dict[str, list[bytes]]:
    """Seed inputs per target, in a fixed order."""
    cases = sorted((SUITE / "cases").iterdir())
    out: dict[str, list[bytes]] = {
        "package": [
            c.joinpath("package.mindvec").read_bytes() for c in cases if (c / "package.mindvec").is_file()
        ],
        "trust": [c.joinpath("trust.txt").read_bytes() for c in cases if (c / "trust.txt").is_file()],
        "state": [c.joinpath("state.json").read_bytes() for c in cases if (c / "state.json").is_file()],
        "key-file": [p.read_bytes() for p in sorted((SUITE / "keys").glob("*.key"))],
        "rotation": [
            RotationRecord.create(
                FUZZ_KEY, SecretKey.from_seed(bytes(32)), "fuzz", "2026-01-01T00:00:00Z"
            ).to_bytes()
        ],
    }
    out.update(_import_seeds())
    out["key-file"].append(FUZZ_KEY.to_file_bytes())
    out["state"].append(b'{"type": "mindvec-state", "version": 1, "packages": {}, "pins": {}}')
    return out


def _import_seeds() -> dict[str, list[bytes]]:
    """A control vector GGUF (written with the gguf library), its safetensors and JSON forms."""
    import json
    import tempfile

    import gguf
    import numpy as np
    from safetensors.numpy import save

    values = {layer: np.linspace(-1.0, 1.0, 16, dtype=np.float32) * layer for layer in (1, 2)}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.gguf"
        writer = gguf.GGUFWriter(str(path), "controlvector")
        writer.add_string("controlvector.model_hint", "llama")
        writer.add_uint32("controlvector.layer_count", len(values))
        for layer, v in values.items():
            writer.add_tensor(f"direction.{layer}", v)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        gguf_bytes = path.read_bytes()
    entries = [
        {
            "values": v.tolist(),
            "hook_name": f"blocks.{k}.hook_resid_post",
            "layer_num": k,
            "model_id": "llama",
        }
        for k, v in values.items()
    ]
    return {
        "import-gguf": [gguf_bytes],
        "import-json": [json.dumps(entries).encode(), json.dumps(entries[0]).encode()],
        "import-safetensors": [save({str(k): v for k, v in values.items()}, metadata={"layer_type": "mlp"})],
    }


def write(folder: Path) -> dict[str, int]:
    counts = {}
    for target, items in seeds().items():
        where = folder / target
        where.mkdir(parents=True, exist_ok=True)
        for index, data in enumerate(items):
            (where / f"seed-{index:04d}").write_bytes(data)
        counts[target] = len(items)
    return counts


if __name__ == "__main__":
    print(write(Path(sys.argv[1] if len(sys.argv) > 1 else "fuzz-corpus")))
