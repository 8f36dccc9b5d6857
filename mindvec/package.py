"""Package: open, read tensors lazily with digest checks, and write packages atomically.

Reading follows the spec's check order: structure and bounds (:func:`read_raw`),
strict canonical decode, schema and semantic rules, the safetensors header digest
and its consistency with the manifest, and finally each tensor's digest when that
tensor is first used (or all of them in :meth:`Package.check_integrity`). Signatures
are read here but verified by :mod:`mindvec.verification`.

Tensors are mapped zero-copy and read-only from the file. A digest proves what the
bytes were when they were hashed: a file changed under a live mapping (by another
process writing in place) is outside what a digest can protect. Writers that replace
packages atomically (as :func:`write` does) never change a mapped file.
"""

from __future__ import annotations

import hashlib
import hmac
import mmap
import os
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from mindvec import canonical, shapes
from mindvec import manifest as mf
from mindvec._fs import atomic_writer, open_regular
from mindvec.container import (
    RawPackage,
    SignatureEntry,
    container_chunks,
    encode_signature_block,
    read_raw,
)
from mindvec.errors import MalformedError, UnverifiedError, UsageError
from mindvec.features import minor_needed
from mindvec.limits import FORMAT_VERSION, MAX_MANIFEST
from mindvec.payload import (
    Header,
    TensorData,
    TensorInfo,
    as_float32,
    build_payload,
    header_digest,
    numpy_dtype,
    parse_header,
    parse_payload,
    read_header_len,
    tensor_digests,
    to_tensor_data,
)
from mindvec.text import escape
from mindvec.values import check_cca, check_covariance, check_orthogonal, check_values

#: packages with more tensor bytes than this hash on several threads
PARALLEL_THRESHOLD = 64 * 2**20


class Signer(Protocol):
    """Anything that signs exact manifest bytes (``mindvec.keys.SecretKey`` is one)."""

    def sign_manifest(self, manifest_bytes: bytes) -> SignatureEntry: ...


def _digest_error(what: str) -> UnverifiedError:
    return UnverifiedError(
        "digest-mismatch", f"{what} does not match its signed digest; the file was altered"
    )


class Package:
    """An opened .mindvec package. Use :func:`open` to get one."""

    def __init__(self, raw: RawPackage, manifest: dict[str, Any], header: Header) -> None:
        self.raw = raw
        self._manifest = manifest
        self.header = header
        self._vector_tensors = {e.tensor for v in mf.vectors(manifest) for e in v.sites}
        self._verified: set[str] = set()
        self._lock = threading.Lock()
        self._mmap: mmap.mmap | None = None

    # ------------------------------------------------------------ construction

    @classmethod
    def from_raw(cls, raw: RawPackage) -> Package:
        """Decode, validate and bind the payload header; tensors stay on disk."""
        manifest = canonical.decode(raw.manifest_bytes)
        mf.validate(manifest, raw.layout.version)
        header_bytes = _read_header_bytes(raw)
        if not hmac.compare_digest(header_digest(header_bytes), manifest["payload"]["header_sha256"]):
            raise _digest_error("the safetensors header")
        header = parse_header(header_bytes, raw.layout.payload_len)
        shapes.check_header(manifest, header.tensors)
        return cls(raw, manifest, header)

    # ------------------------------------------------------------ plain attributes

    @property
    def path(self) -> Path:
        return self.raw.path

    @property
    def manifest(self) -> dict[str, Any]:
        """The decoded manifest; treat it as read-only (the typed views read it too)."""
        return self._manifest

    @property
    def manifest_bytes(self) -> bytes:
        return self.raw.manifest_bytes

    @property
    def identity(self) -> bytes:
        """sha256 of the manifest bytes; co-signing never changes it."""
        return hashlib.sha256(self.raw.manifest_bytes).digest()

    @property
    def signatures(self) -> list[SignatureEntry]:
        return list(self.raw.signatures)

    @property
    def version(self) -> tuple[int, int]:
        return self.raw.layout.version

    @property
    def tensor_names(self) -> list[str]:
        return list(self.header.tensors)

    def tensor_info(self, name: str) -> TensorInfo:
        try:
            return self.header.tensors[name]
        except KeyError:
            raise UsageError("not-found", f"no tensor named {escape(name, 80)!r} in {self.path}") from None

    # ------------------------------------------------------------ typed views

    def models(self) -> dict[str, mf.ModelRef]:
        return mf.models(self._manifest)

    def vectors(self) -> list[mf.VectorSpec]:
        return mf.vectors(self._manifest)

    def mappings(self) -> list[mf.MappingSpec]:
        return mf.mappings(self._manifest)

    def model(self, ref: str) -> mf.ModelRef:
        found = self.models().get(ref)
        if found is None:
            raise UsageError(
                "not-found", f"no model {escape(ref, 80)!r}; the package has {sorted(self.models())}"
            )
        return found

    def vector(self, name: str | None = None) -> mf.VectorSpec:
        """The vector called ``name``; with no name, the package's only vector."""
        return _pick(self.vectors(), name, "vector")

    def mapping(self, name: str | None = None) -> mf.MappingSpec:
        """The mapping called ``name``; with no name, the package's only mapping."""
        return _pick(self.mappings(), name, "mapping")

    # ------------------------------------------------------------ tensors

    def _map(self) -> mmap.mmap:
        with self._lock:
            if self._mmap is None:
                self._mmap = _map_file(self.raw)
            return self._mmap

    def _span(self, info: TensorInfo) -> tuple[int, int]:
        start = self.raw.layout.payload_offset + self.header.data_offset + info.begin
        return start, start + info.nbytes

    def _verify_tensor(self, name: str, mapped: mmap.mmap) -> None:
        info = self.header.tensors[name]
        start, end = self._span(info)
        digest = hashlib.sha256(memoryview(mapped)[start:end]).digest()
        if not hmac.compare_digest(digest, self._manifest["payload"]["tensors"][name]):
            raise _digest_error(f"tensor {name!r}")
        values = as_float32(self._view(info, mapped), info.dtype)
        check_values(name, values, vector=name in self._vector_tensors)

    def _view(self, info: TensorInfo, mapped: mmap.mmap) -> np.ndarray[Any, Any]:
        start, _ = self._span(info)
        flat = np.frombuffer(mapped, dtype=numpy_dtype(info.dtype), count=info.numel, offset=start)
        return flat.reshape(info.shape)

    def tensor(self, name: str) -> np.ndarray[Any, Any]:
        """A read-only, zero-copy view of a tensor; its digest is checked on first access.

        BF16 comes back as ``ml_dtypes.bfloat16`` when installed, else as the raw
        ``uint16`` bits.
        """
        info = self.tensor_info(name)
        mapped = self._map()
        if name not in self._verified:
            self._verify_tensor(name, mapped)
            self._verified.add(name)
        return self._view(info, mapped)

    def check_integrity(self, threads: int | None = None) -> None:
        """Hash the header and every tensor once; raise ``digest-mismatch`` on the first bad one."""
        mapped = self._map()
        start = self.raw.layout.payload_offset
        prefix = bytes(mapped[start : start + 8])
        if read_header_len(prefix, self.raw.layout.payload_len) != self.header.header_len:
            raise _digest_error("the safetensors header length")
        header_bytes = memoryview(mapped)[start + 8 : start + self.header.data_offset]
        if not hmac.compare_digest(
            hashlib.sha256(header_bytes).digest(), self._manifest["payload"]["header_sha256"]
        ):
            raise _digest_error("the safetensors header")
        names = list(self.header.tensors)
        workers = _worker_count(threads, sum(i.nbytes for i in self.header.tensors.values()), len(names))
        if workers <= 1:
            for name in names:
                self._verify_tensor(name, mapped)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(lambda n: self._verify_tensor(n, mapped), names))
        self._verified.update(names)

    # ------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Release the file mapping. Arrays handed out keep it alive until they are freed."""
        with self._lock:
            if self._mmap is not None:
                try:
                    self._mmap.close()
                except BufferError:  # arrays still reference it; the GC frees it later
                    pass
                self._mmap = None

    def __enter__(self) -> Package:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Package({str(self.path)!r}, id={self._manifest['package']['id']!r})"


#: what the entry points accept as a package: an opened Package or a path to one
PackageSource = Package | str | os.PathLike[str]

_Item = TypeVar("_Item", mf.VectorSpec, mf.MappingSpec)


def _pick(items: list[_Item], name: str | None, kind: str) -> _Item:
    names = [item.name for item in items]
    if not items:
        raise UsageError("not-found", f"the package has no {kind}")
    if name is None:
        if len(items) == 1:
            return items[0]
        raise UsageError("argument", f"the package has {len(items)} {kind}s {names}; name the one you want")
    for item in items:
        if item.name == name:
            return item
    raise UsageError("not-found", f"no {kind} named {escape(name, 80)!r}; the package has {names}")


def _worker_count(threads: int | None, total_bytes: int, count: int) -> int:
    if threads is not None:
        return max(1, min(threads, count))
    if total_bytes < PARALLEL_THRESHOLD:
        return 1
    return max(1, min(os.cpu_count() or 1, count, 32))


def _read_header_bytes(raw: RawPackage) -> bytes:
    """Read the safetensors header length, bound it, and only then read the header."""
    start = raw.layout.payload_offset
    try:
        with open_regular(raw.path, what="package") as handle:
            handle.seek(start)
            header_len = read_header_len(handle.read(8), raw.layout.payload_len)
            data = handle.read(header_len)
    except OSError as exc:
        raise UsageError("io", f"cannot read {raw.path}: {exc.strerror or exc}") from None
    if len(data) != header_len:
        raise MalformedError(
            "truncated", "the file ended inside the safetensors header; it changed while read"
        )
    return data


def _map_file(raw: RawPackage) -> mmap.mmap:
    try:
        with open_regular(raw.path, what="package") as handle:
            if os.fstat(handle.fileno()).st_size != raw.file_size:
                raise MalformedError(
                    "truncated", f"{raw.path} changed size since it was opened; open it again"
                )
            return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as exc:
        raise UsageError("io", f"cannot map {raw.path}: {exc.strerror or exc}") from None


def open(path: str | os.PathLike[str]) -> Package:  # noqa: A001 - the fixed public name
    """Open a package: read preamble, manifest and signatures; map tensors lazily."""
    return Package.from_raw(read_raw(path))


# ---------------------------------------------------------------- writing


def _full_manifest(manifest: Mapping[str, Any], payload: bytes, header: Header) -> dict[str, Any]:
    full = dict(manifest)
    full["format"] = f"{FORMAT_VERSION[0]}.{minor_needed(manifest)}"
    full["payload"] = {"header_sha256": header.digest, "tensors": tensor_digests(payload, header)}
    return full


def _check_written_values(full: Mapping[str, Any], data: Mapping[str, TensorData]) -> None:
    """What the reader checks per tensor on access, plus the writer-only mapping rules."""
    vector_tensors = {e.tensor for v in mf.vectors(full) for e in v.sites}
    arrays = {name: as_float32(t.to_numpy(), t.dtype) for name, t in data.items()}
    for name, values in arrays.items():
        check_values(name, values, vector=name in vector_tensors)
    for mapping in mf.mappings(full):
        check_cca(mapping)
        if mapping.form == "orthogonal":
            weight = mapping.tensors["weight"]
            check_orthogonal(weight, arrays[weight], data[weight].dtype)
        if "source_covariance" in mapping.tensors:
            check_covariance(
                mapping.tensors["source_covariance"], arrays[mapping.tensors["source_covariance"]]
            )


def encode_package(
    manifest: Mapping[str, Any], tensors: Mapping[str, Any], *, signers: Iterable[Signer] = ()
) -> list[bytes]:
    """Validate by the reader's rules and return the file's byte pieces in order."""
    if not isinstance(manifest, Mapping):
        raise UsageError("argument", "manifest must be a dict")
    data = {str(name): to_tensor_data(value) for name, value in tensors.items()}
    payload = build_payload(data)
    header = parse_payload(payload)
    full = _full_manifest(manifest, payload, header)
    manifest_bytes = canonical.encode(full)
    if len(manifest_bytes) > MAX_MANIFEST:
        raise MalformedError(
            "bounds", f"the manifest encodes to {len(manifest_bytes)} bytes, over {MAX_MANIFEST}"
        )
    decoded = canonical.decode(manifest_bytes)
    version = (FORMAT_VERSION[0], minor_needed(decoded))
    mf.validate(decoded, version)
    shapes.check_header(decoded, header.tensors)
    _check_written_values(decoded, data)
    block = encode_signature_block([signer.sign_manifest(manifest_bytes) for signer in signers])
    return container_chunks(manifest_bytes, payload, block, version)


def _reader_check(path: Path) -> None:
    """The written temp file must pass every check of the reader before it is renamed."""
    with Package.from_raw(read_raw(path)) as package:
        package.check_integrity()


def write(
    path: str | os.PathLike[str],
    manifest: Mapping[str, Any],
    tensors: Mapping[str, Any],
    *,
    signers: Iterable[Signer] = (),
) -> Path:
    """Write a package atomically; identical inputs give byte-identical files.

    ``manifest`` leaves out what the writer computes (``format`` and ``payload``);
    if present they are replaced. ``tensors`` holds numpy arrays, torch tensors or
    :class:`~mindvec.payload.TensorData`. ``signers`` sign the exact manifest bytes.
    """
    chunks = encode_package(manifest, tensors, signers=signers)
    target = Path(path)
    with atomic_writer(target, check=_reader_check) as handle:
        for chunk in chunks:
            handle.write(chunk)
    return target
