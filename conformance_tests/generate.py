"""Generate the mindvec 1.0 conformance cases, deterministically.

    python -m conformance_tests.generate [--out DIR]

Valid packages come from the project's writer (``mindvec.write``), signed with the fixed
test keys in ``keys/``; hostile cases are byte surgery on those files (or raw bytes for
structural cases). No randomness, no wall clock: running this twice gives the same bytes,
which ``tests/test_conformance.py`` checks.

The expected summary of a valid case is computed here by an independent minimal parser
(struct, msgpack, json), not by the reader under test.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import shutil
import struct
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

import mindvec
from conformance_tests.codes import CODES
from conformance_tests.tagged import tag
from mindvec import canonical, container
from mindvec.keys import SecretKey
from mindvec.payload import TensorData
from mindvec.state import State
from mindvec.trust import TrustEntry, TrustStore, parse_time

SUITE_DIR = Path(__file__).resolve().parent
MAGIC = b"\x89MVEC\r\n\n"
END_MAGIC = b"MVECEND\n"
NOW = "2026-06-01T00:00:00Z"
CREATED = "2026-01-01T00:00:00Z"
PACKAGE_FILE = "package.mindvec"

# ---------------------------------------------------------------- requirements
#
# Cases name topics; TOPICS maps each topic to the spec's requirement ids. Keeping the
# mapping in one table makes renumbering the spec a one-place change.

TOPICS: dict[str, tuple[str, ...]] = {
    # 2.2 structure
    "magic": ("R-1",),
    "major": ("R-2",),
    "minor-accept": ("R-3",),
    "flags": ("R-4",),
    "short-file": ("R-5",),
    "manifest-len": ("R-6", "R-8"),
    "payload-len": ("R-7", "R-8"),
    "fit": ("R-8",),
    "end-magic": ("R-9",),
    "sig-len": ("R-10",),
    "exact": ("R-11",),
    "layout": ("R-8", "R-11"),
    "padding": ("R-12",),
    # 3 canonical msgpack
    "map-keys": ("R-15",),
    "dup-key": ("R-16",),
    "ext": ("R-17",),
    "finite": ("R-18",),
    "utf8": ("R-19",),
    "depth": ("R-20",),
    "occupy": ("R-21",),
    "reencode": ("R-22",),
    # 4, 5 manifest
    "schema": ("R-23",),
    "manifest-schema": ("R-23",),
    "types": ("R-24",),
    "manifest-types": ("R-24",),
    "byte-length": ("R-25",),
    "format": ("R-27",),
    "critical": ("R-28",),
    "model-refs": ("R-29",),
    "unique-names": ("R-30",),
    "mapping-forms": ("R-32",),
    "scale-range": ("R-33",),
    "tensor-refs": ("R-34", "R-51"),
    "orthogonal": ("R-37",),
    # 7 payload
    "nbound": ("R-40",),
    "n56": ("R-41",),
    "header-digest": ("R-42",),
    "hdrpad": ("R-43",),
    "json-dup": ("R-44",),
    "metadata": ("R-45",),
    "entry-keys": ("R-47",),
    "dtype": ("R-48",),
    "nbytes": ("R-49",),
    "payload-nbytes": ("R-49",),
    "contig": ("R-50",),
    "payload-contig": ("R-50",),
    "shape": ("R-52",),
    "tensor-digest": ("R-53",),
    "vector-value": ("R-54",),
    # 8.1 sites
    "site-layer": ("R-31", "R-56"),
    "site-twice": ("R-31", "R-57"),
    "resid-pre": ("R-31", "R-58"),
    "cross-attn": ("R-31", "R-59"),
    # 9 signatures
    "sig-block": ("R-13", "R-62"),
    "sig-sort": ("R-13", "R-63"),
    "keyid": ("R-64",),
    "pae": ("R-65",),
    "strict": ("R-66",),
    # 10, 11 order and trust
    "order": ("R-69",),
    "policy": ("R-82",),
    "policy-no-relax": ("R-71",),
    "now": ("R-73",),
    "revoked": ("R-74",),
    "rollback": ("R-75",),
    # 12 versions and extensions
    "major-reject": ("R-2",),
    "minor-additive": ("R-80",),
    "ext-ignore": ("R-81",),
}


def requirement_ids(topics: Iterable[str]) -> list[str]:
    ids: list[str] = []
    for topic in topics:
        if topic not in TOPICS:
            raise KeyError(f"topic {topic!r} has no requirement ids in TOPICS")
        for rid in TOPICS[topic]:
            if rid not in ids:
                ids.append(rid)
    return ids


# ---------------------------------------------------------------- keys

KEY_NAMES = (
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
    "ivan", "judy", "kate", "leo", "mallory", "nick", "olivia", "peggy",
)  # fmt: skip


def key_seed(name: str) -> bytes:
    return hashlib.sha256(b"mindvec conformance test key: " + name.encode()).digest()


KEYS: dict[str, SecretKey] = {name: SecretKey.from_seed(key_seed(name), comment=name) for name in KEY_NAMES}


def keyid_hex(name: str) -> str:
    return KEYS[name].keyid.hex()


def write_keys(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    listing = []
    for name in KEY_NAMES:
        key = KEYS[name]
        listing.append(
            {
                "name": name,
                "seed": key_seed(name).hex(),
                "public_key": key.public_key.raw.hex(),
                "keyid": key.keyid.hex(),
            }
        )
        (folder / f"{name}.key").write_bytes(key.to_file_bytes(None))
        (folder / f"{name}.pub").write_text(key.public_key.to_line(name) + "\n", encoding="utf-8")
    text = json.dumps({"note": "PUBLIC TEST KEYS: never trust them outside tests", "keys": listing}, indent=2)
    (folder / "keys.json").write_text(text + "\n", encoding="utf-8")


def trust_text(*entries: TrustEntry | str, revoked: Sequence[str] = ()) -> str:
    """A trust store: entries (or key names, trusted for anything), then revocations."""
    store = TrustStore(["# mindvec conformance suite: test keys only"])
    for item in entries:
        store.add(TrustEntry(item, KEYS[item].public_key, comment=item) if isinstance(item, str) else item)
    for name in revoked:
        store.revoke(KEYS[name].public_key, name)
    return store.dumps()


def entry(name: str, **options: Any) -> TrustEntry:
    for field_name in ("valid_after", "valid_before"):
        if field_name in options:
            options[field_name] = parse_time(options[field_name])
    return TrustEntry(name, KEYS[name].public_key, comment=name, **options)


def state_text(*records: tuple[str, int, bytes]) -> str:
    """A rollback state file with (package id, version, identity) records."""
    with tempfile.TemporaryDirectory() as tmp:
        state = State(Path(tmp) / "state.json")
        for package_id, version, identity in records:
            state.record(package_id, version, identity)
        return (Path(tmp) / "state.json").read_text(encoding="utf-8")


# ---------------------------------------------------------------- layout surgery


def align64(n: int) -> int:
    return (n + 63) // 64 * 64


@dataclass(frozen=True)
class Parts:
    """The sections of a package; ``build`` lays them out, overrides and all."""

    manifest: bytes
    payload: bytes
    sigblock: bytes
    magic: bytes = MAGIC
    major: int = 1
    minor: int = 0
    flags: int = 0
    manifest_len: int | None = None
    payload_len: int | None = None
    sig_len: int | None = None
    padding: bytes | None = None
    end_magic: bytes = END_MAGIC

    def build(self) -> bytes:
        manifest_len = len(self.manifest) if self.manifest_len is None else self.manifest_len
        payload_len = len(self.payload) if self.payload_len is None else self.payload_len
        sig_len = len(self.sigblock) if self.sig_len is None else self.sig_len
        pad = self.padding
        if pad is None:
            pad = b"\x00" * (align64(32 + len(self.manifest)) - 32 - len(self.manifest))
        preamble = struct.pack(
            "<8sHHIQQ", self.magic, self.major, self.minor, self.flags, manifest_len, payload_len
        )
        trailer = struct.pack("<Q", sig_len) + self.end_magic
        return preamble + self.manifest + pad + self.payload + self.sigblock + trailer


def split(data: bytes) -> Parts:
    """Cut a well-formed package into its sections."""
    magic, major, minor, flags, manifest_len, payload_len = struct.unpack_from("<8sHHIQQ", data)
    payload_offset = align64(32 + manifest_len)
    sig_offset = payload_offset + payload_len
    (sig_len,) = struct.unpack_from("<Q", data, len(data) - 16)
    parts = Parts(
        manifest=data[32 : 32 + manifest_len],
        payload=data[payload_offset:sig_offset],
        sigblock=data[sig_offset : sig_offset + sig_len],
        major=major,
        minor=minor,
    )
    assert magic == MAGIC and flags == 0 and parts.build() == data, "split() needs a well-formed package"
    return parts


def manifest_of(parts: Parts) -> dict[str, Any]:
    value = msgpack.unpackb(parts.manifest, raw=False, strict_map_key=True)
    assert isinstance(value, dict)
    return value


def sigblock(manifest_bytes: bytes, signers: Sequence[str]) -> bytes:
    entries = [KEYS[name].sign_manifest(manifest_bytes) for name in signers]
    return container.encode_signature_block(entries)


def with_manifest(parts: Parts, manifest: dict[str, Any], signers: Sequence[str] | None = None) -> Parts:
    """Replace the manifest (canonically encoded); re-sign when ``signers`` is given."""
    manifest_bytes = packb_sorted(manifest)
    block = sigblock(manifest_bytes, signers) if signers is not None else parts.sigblock
    return replace(parts, manifest=manifest_bytes, sigblock=block)


def with_raw_manifest(parts: Parts, manifest_bytes: bytes, signers: Sequence[str] | None = None) -> Parts:
    block = sigblock(manifest_bytes, signers) if signers is not None else parts.sigblock
    return replace(parts, manifest=manifest_bytes, sigblock=block)


def split_payload(payload: bytes) -> tuple[bytes, bytes]:
    """(header bytes with their padding, data section)."""
    (n,) = struct.unpack_from("<Q", payload)
    return payload[8 : 8 + n], payload[8 + n :]


def join_payload(header: bytes, data: bytes, *, pad: bool = True) -> bytes:
    if pad:
        header = header + b" " * ((56 - len(header)) % 64)
    return struct.pack("<Q", len(header)) + header + data


def restamp(man: dict[str, Any], payload: bytes) -> dict[str, Any]:
    """A copy of ``man`` whose payload.header_sha256 matches ``payload``'s header."""
    header, _ = split_payload(payload)
    out = copy.deepcopy(man)
    out["payload"]["header_sha256"] = hashlib.sha256(header).digest()
    return out


# ---------------------------------------------------------------- raw msgpack


def mp_str(text: str) -> bytes:
    packed: bytes = msgpack.packb(text, use_bin_type=True)
    return packed


def mp_map_raw(items: Sequence[tuple[bytes, bytes]]) -> bytes:
    """A fixmap/map16 with already-encoded keys and values, in the order given."""
    n = len(items)
    head = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
    return head + b"".join(key + value for key, value in items)


def encode_map_unsorted(manifest: dict[str, Any], reverse_top: bool = True) -> bytes:
    """The manifest with its top-level keys in reverse order (everything else canonical)."""
    keys = sorted(manifest, key=lambda k: k.encode(), reverse=reverse_top)
    return mp_map_raw([(mp_str(key), canonical.encode(manifest[key])) for key in keys])


# ---------------------------------------------------------------- independent summary


def summarize(data: bytes) -> dict[str, Any]:
    """The decode summary of a valid package, from a minimal parser independent of mindvec."""
    _, major, minor, _, manifest_len, payload_len = struct.unpack_from("<8sHHIQQ", data)
    manifest_bytes = data[32 : 32 + manifest_len]
    payload_offset = align64(32 + manifest_len)
    payload = data[payload_offset : payload_offset + payload_len]
    (sig_len,) = struct.unpack_from("<Q", data, len(data) - 16)
    block = data[payload_offset + payload_len : payload_offset + payload_len + sig_len]
    header, body = split_payload(payload)
    tensors = {}
    for name, info in json.loads(header).items():
        begin, end = info["data_offsets"]
        tensors[name] = {
            "dtype": info["dtype"],
            "shape": info["shape"],
            "sha256": hashlib.sha256(body[begin:end]).hexdigest(),
        }
    return {
        "format": f"{major}.{minor}",
        "identity": hashlib.sha256(manifest_bytes).hexdigest(),
        "manifest": tag(msgpack.unpackb(manifest_bytes, raw=False)),
        "tensors": dict(sorted(tensors.items())),
        "signatures": [
            {"alg": item["alg"], "keyid": item["keyid"].hex()} for item in msgpack.unpackb(block, raw=False)
        ],
    }


def identity_of(data: bytes) -> str:
    (manifest_len,) = struct.unpack_from("<Q", data, 16)
    return hashlib.sha256(data[32 : 32 + manifest_len]).hexdigest()


# ---------------------------------------------------------------- manifests


def sha(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


MODEL_A = {
    "model_type": "llama",
    "architecture": "LlamaForCausalLM",
    "hidden_size": 4,
    "num_layers": 2,
    "source": {
        "kind": "hf",
        "repo": "conformance/tiny-llama",
        "revision": "0123456789abcdef0123456789abcdef01234567",
    },
}
MODEL_B = {
    "model_type": "gemma3_text",
    "hidden_size": 3,
    "num_layers": 3,
    "config_sha256": sha("tiny gemma config"),
    "source": {
        "kind": "gguf",
        "file_sha256": sha("tiny gemma gguf"),
        "quantization": "F16",
        "file_name": "tiny.gguf",
    },
}
MODEL_T5 = {
    "model_type": "t5",
    "hidden_size": 4,
    "num_layers": 2,
    "num_encoder_layers": 2,
    "source": {"kind": "local", "note": "a tiny encoder-decoder for the conformance suite"},
}
DATASET = {"name": "conformance pairs", "sha256": sha("conformance dataset"), "samples": 64}
CALIBRATION = {"mean_norm": 12.5, "tokens": 256}
METRICS = {"centered_cosine": 0.75, "raw_cosine": 0.875, "r2": 0.5}


def package_info(package_id: str = "conformance/minimal", version: int = 1, **extra: Any) -> dict[str, Any]:
    info = {
        "id": package_id,
        "version": version,
        "name": "Conformance package",
        "description": "A small package from the mindvec conformance suite.",
        "intended_effect": "None: it exists to test readers.",
    }
    info.update(extra)
    return info


def provenance(**extra: Any) -> dict[str, Any]:
    prov: dict[str, Any] = {
        "creator": "mindvec conformance suite",
        "created": CREATED,
        "tool": {"name": "conformance_tests.generate", "version": "1.0"},
        "license": "CC0-1.0",
    }
    prov.update(extra)
    return prov


def site(layer: int, point: str = "resid_post", stack: str = "decoder") -> dict[str, Any]:
    return {"stack": stack, "layer": layer, "point": point}


def vector(
    name: str = "steer",
    model: str = "a",
    operation: str = "add",
    sites: Sequence[tuple[dict[str, Any], str]] = ((site(1), "steer.l1"),),
    **extra: Any,
) -> dict[str, Any]:
    vec: dict[str, Any] = {
        "name": name,
        "model": model,
        "operation": operation,
        "scale": 4.0,
        "scale_range": [0.0, 8.0],
        "positions": "all",
        "sites": [{"site": s, "tensor": t, "calibration": dict(CALIBRATION)} for s, t in sites],
        "method": {"kind": "manual"},
    }
    vec.update(extra)
    return vec


def mapping(form: str, tensors: dict[str, str], name: str = "a-to-b", **extra: Any) -> dict[str, Any]:
    mp: dict[str, Any] = {
        "name": name,
        "source": {"model": "a", "site": site(1)},
        "target": {"model": "b", "site": site(2)},
        "form": form,
        "tensors": tensors,
        "fit": {
            "method": "ridge",
            "hyperparameters": {"alpha": 0.5},
            "dataset": dict(DATASET),
            "pairing": "chunk",
        },
        "metrics": {
            "held_out": dict(METRICS),
            "baselines": {"shuffled": {"centered_cosine": 0.0, "raw_cosine": 0.5, "r2": -0.25}},
            "train_samples": 48,
            "test_samples": 16,
        },
        "target_calibration": dict(CALIBRATION),
    }
    mp.update(extra)
    return mp


def manifest(
    vectors: Sequence[dict[str, Any]] | None = None,
    models: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    man: dict[str, Any] = {
        "package": package_info(),
        "models": copy.deepcopy(models) if models is not None else {"a": copy.deepcopy(MODEL_A)},
        "provenance": provenance(),
    }
    man["vectors"] = list(vectors) if vectors is not None else [vector()]
    if not man["vectors"]:
        del man["vectors"]
    man.update(extra)
    return man


STEER = np.array([0.5, -1.0, 2.0, 0.25])


def arr(values: Any, dtype: str = "float32") -> np.ndarray[Any, Any]:
    return np.asarray(values, dtype=dtype)


def bf16(values: Any) -> TensorData:
    bits = (np.asarray(values, dtype="<f4").view("<u4") >> 16).astype("<u2")
    return TensorData.bf16(bits)


def write(man: dict[str, Any], tensors: dict[str, Any], signers: Sequence[str] = ()) -> bytes:
    """A package from the project's writer, as bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / PACKAGE_FILE
        mindvec.write(path, man, tensors, signers=[KEYS[name] for name in signers])
        data = path.read_bytes()
    assert split(data).build() == data
    return data


def minimal(signers: Sequence[str] = (), **info: Any) -> bytes:
    man = manifest()
    if info:
        man["package"] = package_info(**info)
    return write(man, {"steer.l1": arr(STEER)}, signers)


def header_json(entries: Sequence[tuple[str, Any]]) -> bytes:
    """A safetensors JSON header from (key, value) pairs, in order (duplicates allowed)."""
    body = ",".join(json.dumps(k) + ":" + json.dumps(v, separators=(",", ":")) for k, v in entries)
    return ("{" + body + "}").encode()


def tolerant_digests(payload: bytes) -> dict[str, bytes]:
    """sha256 of each tensor's bytes, for whatever offsets the header claims."""
    header, data = split_payload(payload)
    digests: dict[str, bytes] = {}
    try:
        parsed = json.loads(header)
    except ValueError:
        return digests
    if not isinstance(parsed, dict):
        return digests
    for name, info in parsed.items():
        if name == "__metadata__" or not isinstance(info, dict):
            continue
        offsets = info.get("data_offsets")
        chunk = b""
        if isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets):
            if offsets[0] <= offsets[1] <= len(data):
                chunk = data[offsets[0] : offsets[1]]
        digests[name] = hashlib.sha256(chunk).digest()
    return digests


def raw_package(
    man: dict[str, Any],
    tensors: dict[str, Any] | None = None,
    *,
    payload: bytes | None = None,
    signers: Sequence[str] = (),
    version: tuple[int, int] = (1, 0),
    digests: dict[str, bytes] | None = None,
) -> bytes:
    """What the writer would produce, without its validation: for packages it must refuse.

    The payload comes from the project's payload builder (``mindvec.payload.build_payload``)
    unless ``payload`` is given; ``format`` and the payload digests are filled in.
    """
    from mindvec.payload import build_payload, to_tensor_data

    if payload is None:
        assert tensors is not None
        payload = build_payload({name: to_tensor_data(value) for name, value in tensors.items()})
    header, _ = split_payload(payload)
    out = copy.deepcopy(man)
    out.setdefault("format", f"{version[0]}.{version[1]}")
    out["payload"] = {
        "header_sha256": hashlib.sha256(header).digest(),
        "tensors": digests if digests is not None else tolerant_digests(payload),
    }
    manifest_bytes = packb_sorted(out)
    return Parts(
        manifest_bytes, payload, sigblock(manifest_bytes, signers), major=version[0], minor=version[1]
    ).build()


def packb_sorted(value: Any) -> bytes:
    """msgpack with map keys sorted as the profile wants, but no other check (ext, NaN pass)."""

    def sort(item: Any) -> Any:
        if isinstance(item, dict):
            return {k: sort(item[k]) for k in sorted(item, key=lambda k: str(k).encode())}
        if isinstance(item, list):
            return [sort(x) for x in item]
        return item

    packed: bytes = msgpack.packb(sort(value), use_bin_type=True, strict_types=False, datetime=False)
    return packed


def flip(data: bytes, offset: int, mask: int = 0x01) -> bytes:
    return data[:offset] + bytes([data[offset] ^ mask]) + data[offset + 1 :]


def splice(data: bytes, old: bytes, new: bytes) -> bytes:
    """Replace the single occurrence of ``old``."""
    assert data.count(old) == 1, f"{old!r} occurs {data.count(old)} times"
    return data.replace(old, new)


# ---------------------------------------------------------------- the suite


@dataclass
class Suite:
    out: Path
    count: int = 0

    def _folder(self, case_id: str) -> Path:
        folder = self.out / "cases" / case_id
        if folder.exists():
            raise ValueError(f"duplicate case id {case_id}")
        folder.mkdir(parents=True)
        return folder

    def _write(
        self,
        case_id: str,
        topics: Sequence[str],
        description: str,
        flags: Sequence[str],
        data: bytes,
        expected: dict[str, Any],
        *,
        trust: str | None = None,
        state: str | None = None,
        now: str = NOW,
        threshold: int | None = None,
    ) -> None:
        folder = self._folder(case_id)
        (folder / PACKAGE_FILE).write_bytes(data)
        command: dict[str, Any] = {"op": "decode", "file": PACKAGE_FILE}
        if trust is not None:
            command["op"] = "verify"
            (folder / "trust.txt").write_text(trust, encoding="utf-8")
            command["trust"] = "trust.txt"
            if state is not None:
                (folder / "state.json").write_text(state, encoding="utf-8")
                command["state"] = "state.json"
            command["now"] = now
            if threshold is not None:
                command["threshold"] = threshold
        meta = {
            "id": case_id,
            "requirements": requirement_ids(topics),
            "description": description,
            "flags": sorted(set(flags)),
            "command": command,
            "expected": expected,
        }
        text = json.dumps(meta, indent=2, ensure_ascii=False)
        (folder / "case.json").write_text(text + "\n", encoding="utf-8")
        self.count += 1

    def valid(
        self, case_id: str, topics: Sequence[str], description: str, flags: Sequence[str], data: bytes
    ) -> None:
        """A package ``decode`` must accept, with its expected summary."""
        assert case_id.startswith("valid-")
        self._write(
            case_id, topics, description, flags, data, {"result": "valid", "summary": summarize(data)}
        )

    def verified(
        self,
        case_id: str,
        topics: Sequence[str],
        description: str,
        flags: Sequence[str],
        data: bytes,
        signers: Sequence[str],
        trust: str,
        **kw: Any,
    ) -> None:
        """A package ``verify`` must accept; ``signers`` are the counted keys."""
        assert case_id.startswith("valid-")
        verdict = {
            "identity": identity_of(data),
            "verified": True,
            "signers": sorted(keyid_hex(n) for n in signers),
        }
        self._write(
            case_id,
            topics,
            description,
            flags,
            data,
            {"result": "valid", "verdict": verdict},
            trust=trust,
            **kw,
        )

    def reject(
        self,
        case_id: str,
        code: str,
        topics: Sequence[str],
        description: str,
        flags: Sequence[str],
        data: bytes,
        **kw: Any,
    ) -> None:
        """A package that must be rejected with ``code`` (verify when ``trust`` is given)."""
        klass = CODES[code]
        assert case_id.startswith(klass + "-"), f"{case_id} must start with {klass}-"
        self._write(case_id, topics, description, flags, data, {"result": klass, "code": code}, **kw)

    def acceptable(
        self,
        case_id: str,
        topics: Sequence[str],
        description: str,
        flags: Sequence[str],
        data: bytes,
        *,
        codes: Sequence[str] | None = None,
        **kw: Any,
    ) -> None:
        """A package the spec allows to be accepted or rejected (with one of ``codes``)."""
        assert case_id.startswith("acceptable-") and flags
        expected: dict[str, Any] = {"result": "acceptable", "flag": flags[0]}
        if codes is not None:
            expected["codes"] = list(codes)
        self._write(case_id, topics, description, flags, data, expected, **kw)


def generate(out: Path) -> int:
    """Write keys/ and cases/ under ``out`` (both replaced); returns the number of cases."""
    for name in ("cases", "keys"):
        if (out / name).exists():
            shutil.rmtree(out / name)
    write_keys(out / "keys")
    suite = Suite(out)
    from conformance_tests import casebook

    for build in casebook.GROUPS:
        build(suite)
    return suite.count


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance_tests.generate", description=__doc__)
    parser.add_argument("--out", type=Path, default=SUITE_DIR, help="folder for cases/ and keys/")
    args = parser.parse_args(argv)
    count = generate(args.out)
    print(f"wrote {count} cases to {args.out / 'cases'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
