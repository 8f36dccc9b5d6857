"""A small stand-in for the Hugging Face Hub, for tests (pure stdlib).

It serves, on 127.0.0.1, the endpoints that the real ``huggingface_hub`` 2.4 client
calls for ``create_repo``, ``create_commit`` (plain commit + LFS basic transfer, no
Xet), ``model_info`` / revision resolution, ``get_hf_file_metadata`` and
``hf_hub_download`` (HEAD + GET with ``Range``):

- ``GET  /api/models/{repo}`` and ``/api/models/{repo}/revision/{rev}`` -> ``sha``, ``siblings``
- ``HEAD|GET /{repo}/resolve/{rev}/{path}`` -> ``X-Repo-Commit``, ``X-Linked-Etag`` (quoted sha256,
  LFS files), ``ETag``, ``X-Linked-Size``, ``Content-Length``; ``Range: bytes=a-b`` gives 206
- ``POST /api/repos/create`` -> ``{"url": "{endpoint}/{ns}/{name}"}`` (409 if it exists)
- ``POST /api/models/{repo}/preupload/{rev}`` -> ``uploadMode`` per file
- ``POST /{repo}.git/info/lfs/objects/batch`` -> ``actions.upload.href``; ``PUT`` that href
- ``POST /api/models/{repo}/commit/{rev}`` (NDJSON: header, file base64, lfsFile, deletedFile)
  -> ``commitOid``, ``commitUrl``
- ``POST /api/validate-yaml``

It can be told to misbehave, per repo and path (see :class:`HubStandIn`):

- :meth:`HubStandIn.serve_wrong_bytes`: the body differs from what the headers announce
  (same length, one byte flipped) -- a transfer fault;
- :meth:`HubStandIn.serve_tampered`: a tampered file whose etag and size are *correct* for the
  tampered bytes -- what a malicious mirror or a compromised repo serves;
- :meth:`HubStandIn.serve_older_version`: the branch serves an older, validly signed file again;
- :meth:`HubStandIn.change_publisher_key`: package and ``keys/*.pub`` replaced by someone holding
  another key (both are server-side commits, see :meth:`HubStandIn.commit_files`).

Every request is logged in :attr:`HubStandIn.requests` as ``(method, path)``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

_LFS_SUFFIXES = (".mindvec", ".safetensors", ".bin", ".gguf")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class StoredFile:
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def etag(self) -> str:
        """The value huggingface_hub reads: sha256 for LFS files, git blob sha1 otherwise."""
        return self.sha256 if self.lfs else git_blob_sha1(self.data)


@dataclass
class Repo:
    repo_id: str
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, dict[str, StoredFile]] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)

    def resolve(self, revision: str) -> str | None:
        if revision in self.branches:
            return self.branches[revision]
        if revision in self.commits:
            return revision
        return None


@dataclass
class _Fault:
    kind: str  # "wrong-bytes" | "tampered"
    data: bytes | None = None  # served instead (tampered)


class _Error(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class HubStandIn:
    """A Hub on ``127.0.0.1`` with an ephemeral port. Use as a context manager."""

    def __init__(self, token: str | None = None) -> None:
        self.token = token  # when set, write calls need "Authorization: Bearer <token>"
        self.repos: dict[str, Repo] = {}
        self.lfs_store: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self.yaml_validated: list[str] = []
        self._faults: dict[tuple[str, str], _Fault] = {}
        self._lock = threading.RLock()
        self._commit_counter = 0
        self._server: ThreadingHTTPServer | None = None
        self._connections: set[socket.socket] = set()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> HubStandIn:
        handler = type("_BoundHandler", (_Handler,), {"hub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="hub-stand-in", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop open keep-alive connections: afterwards the Hub is unreachable."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> HubStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("the stand-in is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- server-side operations (what a repo owner or an attacker with write access does) --------
    def create_repo(self, repo_id: str) -> Repo:
        with self._lock:
            repo = self.repos.get(repo_id)
            if repo is None:
                repo = Repo(repo_id)
                repo.branches["main"] = self._new_commit_oid(repo_id, "init")
                repo.commits[repo.branches["main"]] = {}
                repo.history.append(repo.branches["main"])
                self.repos[repo_id] = repo
            return repo

    def commit_files(
        self,
        repo_id: str,
        files: Mapping[str, bytes],
        *,
        deleted: tuple[str, ...] = (),
        branch: str = "main",
        lfs: bool | None = None,
    ) -> str:
        """Commit ``files`` directly (no client involved); returns the new commit oid.

        ``lfs=None`` stores binary and ``*.mindvec`` files as LFS, text as regular git blobs.
        """
        stored = {
            path: StoredFile(bytes(data), _is_lfs(path, data) if lfs is None else lfs)
            for path, data in files.items()
        }
        return self._commit_tree(repo_id, stored, deleted=deleted, branch=branch)

    def _commit_tree(
        self,
        repo_id: str,
        files: Mapping[str, StoredFile],
        *,
        deleted: tuple[str, ...] = (),
        branch: str = "main",
    ) -> str:
        with self._lock:
            repo = self.create_repo(repo_id)
            parent = repo.branches.get(branch, repo.history[-1])
            tree = dict(repo.commits[parent])
            for path in deleted:
                tree.pop(path, None)
            for path, stored in files.items():
                if stored.lfs:
                    self.lfs_store[stored.sha256] = stored.data
                tree[path] = stored
            oid = self._new_commit_oid(repo_id, parent)
            repo.commits[oid] = tree
            repo.branches[branch] = oid
            repo.history.append(oid)
            return oid

    def file_at(self, repo_id: str, path: str, revision: str = "main") -> bytes:
        with self._lock:
            repo = self.repos[repo_id]
            oid = repo.resolve(revision)
            if oid is None:
                raise KeyError(revision)
            return repo.commits[oid][path].data

    # -- misbehaviour switches -------------------------------------------------------------------
    def serve_wrong_bytes(self, repo_id: str, path: str) -> None:
        """Serve a body that differs from the announced etag (same size, one byte flipped)."""
        with self._lock:
            self._faults[(repo_id, path)] = _Fault("wrong-bytes")

    def serve_tampered(self, repo_id: str, path: str, data: bytes) -> None:
        """Serve ``data`` instead of the committed file, with etag/size/siblings correct for ``data``."""
        with self._lock:
            self._faults[(repo_id, path)] = _Fault("tampered", bytes(data))

    def serve_older_version(self, repo_id: str, path: str, older: bytes) -> str:
        """Make the branch serve an older (validly signed) file again: a rollback by the server."""
        return self.commit_files(repo_id, {path: older})

    def change_publisher_key(
        self, repo_id: str, path: str, data: bytes, key_files: Mapping[str, bytes]
    ) -> str:
        """Replace the package and the published key files, as someone holding another key would."""
        return self.commit_files(repo_id, {path: data, **key_files})

    def behave(self) -> None:
        """Drop every misbehaviour switch."""
        with self._lock:
            self._faults.clear()

    # -- internals -------------------------------------------------------------------------------
    def _new_commit_oid(self, repo_id: str, parent: str) -> str:
        self._commit_counter += 1
        return hashlib.sha1(f"{repo_id}\0{parent}\0{self._commit_counter}".encode()).hexdigest()

    def _served(self, repo_id: str, path: str, stored: StoredFile) -> tuple[StoredFile, bytes]:
        """(file as announced in headers, body actually sent)."""
        fault = self._faults.get((repo_id, path))
        if fault is None:
            return stored, stored.data
        if fault.kind == "tampered" and fault.data is not None:
            announced = StoredFile(fault.data, stored.lfs)
            return announced, fault.data
        body = bytearray(stored.data)
        if body:
            body[len(body) // 2] ^= 0x01
        return stored, bytes(body)

    def _repo(self, repo_id: str) -> Repo:
        repo = self.repos.get(repo_id)
        if repo is None:
            raise _Error(404, "RepoNotFound", f"Repository Not Found for url: {repo_id}")
        return repo

    def _commit(self, repo: Repo, revision: str) -> str:
        oid = repo.resolve(revision)
        if oid is None:
            raise _Error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return oid

    def _model_info(self, repo_id: str, revision: str, blobs: bool) -> dict[str, Any]:
        with self._lock:
            repo = self._repo(repo_id)
            oid = self._commit(repo, revision)
            siblings: list[dict[str, Any]] = []
            for path in sorted(repo.commits[oid]):
                announced, _ = self._served(repo_id, path, repo.commits[oid][path])
                entry: dict[str, Any] = {"rfilename": path}
                if blobs:
                    entry["size"] = len(announced.data)
                    entry["blobId"] = git_blob_sha1(announced.data)
                    if announced.lfs:
                        entry["lfs"] = {
                            "size": len(announced.data),
                            "sha256": announced.sha256,
                            "pointerSize": 134,
                        }
                siblings.append(entry)
            return {
                "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
                "id": repo_id,
                "modelId": repo_id,
                "author": repo_id.split("/")[0],
                "sha": oid,
                "private": False,
                "disabled": False,
                "gated": False,
                "tags": [],
                "downloads": 0,
                "likes": 0,
                "lastModified": "2026-01-01T00:00:00.000Z",
                "createdAt": "2026-01-01T00:00:00.000Z",
                "siblings": siblings,
            }


def _is_lfs(path: str, data: bytes) -> bool:
    return path.endswith(_LFS_SUFFIXES) or b"\0" in data[:512] or len(data) > 10 * 2**20


def _split_repo(parts: list[str]) -> tuple[str, list[str]]:
    """``[ns, name, rest...]`` -> ("ns/name", rest); a repo without namespace is not supported."""
    if len(parts) < 2:
        raise _Error(404, "RepoNotFound", "a repo id is namespace/name")
    return f"{parts[0]}/{parts[1]}", parts[2:]


class _Handler(BaseHTTPRequestHandler):
    hub: HubStandIn
    protocol_version = "HTTP/1.1"
    server_version = "HubStandIn/1.0"

    def setup(self) -> None:
        super().setup()
        with self.hub._lock:
            self.hub._connections.add(self.connection)

    def finish(self) -> None:
        with self.hub._lock:
            self.hub._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep tests quiet
        return

    # -- plumbing --------------------------------------------------------------------------------
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self, status: int, body: bytes, headers: Mapping[str, str] | None = None, head: bool = False
    ) -> None:
        self.send_response(status)
        merged = {"Content-Length": str(len(body)), **(headers or {})}
        for key, value in merged.items():
            self.send_header(key, value)
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj).encode(), {"Content-Type": "application/json"})

    def _error(self, err: _Error, head: bool = False) -> None:
        body = json.dumps({"error": err.message}).encode()
        self._send(
            err.status,
            body,
            {"Content-Type": "application/json", "X-Error-Code": err.code, "X-Error-Message": err.message},
            head=head,
        )

    def _check_write_auth(self) -> None:
        if self.hub.token is not None and self.headers.get("Authorization") != f"Bearer {self.hub.token}":
            raise _Error(401, "Unauthorized", "Invalid credentials in Authorization header")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        with self.hub._lock:
            self.hub.requests.append((method, url.path))
        parts = [unquote(p) for p in url.path.split("/") if p]
        try:
            if method in ("GET", "HEAD") and len(parts) >= 3 and parts[0] == "api" and parts[1] == "models":
                self._api_models(parts[2:], url.query, head=method == "HEAD")
            elif method in ("GET", "HEAD") and len(parts) >= 5 and parts[2] == "resolve":
                self._resolve(parts, head=method == "HEAD")
            elif method == "POST" and parts == ["api", "repos", "create"]:
                self._create_repo()
            elif method == "POST" and parts == ["api", "validate-yaml"]:
                self._validate_yaml()
            elif (
                method == "POST"
                and len(parts) >= 5
                and parts[:2] == ["api", "models"]
                and parts[4] == "preupload"
            ):
                self._preupload(f"{parts[2]}/{parts[3]}")
            elif (
                method == "POST"
                and len(parts) >= 5
                and parts[:2] == ["api", "models"]
                and parts[4] == "commit"
            ):
                self._commit(f"{parts[2]}/{parts[3]}", "/".join(parts[5:]) or "main")
            elif (
                method == "POST"
                and len(parts) == 6
                and parts[1].endswith(".git")
                and parts[2:]
                == [
                    "info",
                    "lfs",
                    "objects",
                    "batch",
                ]
            ):
                self._lfs_batch(f"{parts[0]}/{parts[1][: -len('.git')]}")
            elif method == "PUT" and len(parts) == 2 and parts[0] == "_lfs":
                self._lfs_put(parts[1])
            else:
                raise _Error(404, "NotFound", f"no route for {method} {url.path}")
        except _Error as err:
            self._error(err, head=method == "HEAD")

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    # -- routes ----------------------------------------------------------------------------------
    def _api_models(self, parts: list[str], query: str, head: bool) -> None:
        repo_id, rest = _split_repo(parts)
        if rest and rest[0] == "revision" and len(rest) >= 2:
            revision = "/".join(rest[1:])
        elif not rest:
            revision = "main"
        else:
            raise _Error(404, "NotFound", f"unsupported path /api/models/{repo_id}/{'/'.join(rest)}")
        info = self.hub._model_info(repo_id, revision, blobs="blobs=" in query)
        self._json(200, info)

    def _resolve(self, parts: list[str], head: bool) -> None:
        repo_id = f"{parts[0]}/{parts[1]}"
        revision, path = parts[3], "/".join(parts[4:])
        with self.hub._lock:
            repo = self.hub._repo(repo_id)
            oid = self.hub._commit(repo, revision)
            stored = repo.commits[oid].get(path)
            if stored is None:
                raise _Error(404, "EntryNotFound", f"{path} does not exist at {oid}")
            announced, body = self.hub._served(repo_id, path, stored)
        headers = {
            "X-Repo-Commit": oid,
            "ETag": f'"{announced.etag}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if announced.lfs:
            headers["X-Linked-Etag"] = f'"{announced.sha256}"'
            headers["X-Linked-Size"] = str(len(announced.data))
        status = 200
        rng = self.headers.get("Range")
        if rng and not head:
            start, end = _parse_range(rng, len(body))
            if start >= len(body) and len(body) > 0:
                headers["Content-Range"] = f"bytes */{len(body)}"
                self._send(416, b"", headers)
                return
            headers["Content-Range"] = f"bytes {start}-{end}/{len(body)}"
            body = body[start : end + 1]
            status = 206
        self._send(status, body, headers, head=head)

    def _create_repo(self) -> None:
        self._check_write_auth()
        payload = json.loads(self._body() or b"{}")
        name = payload.get("name")
        organization = payload.get("organization") or "user"
        if not isinstance(name, str) or not name:
            raise _Error(400, "BadRequest", "name is required")
        repo_id = f"{organization}/{name}"
        with self.hub._lock:
            exists = repo_id in self.hub.repos
            self.hub.create_repo(repo_id)
        if exists:  # like the Hub: 409, with the repo's url (create_repo(exist_ok=True) reads it)
            body = {"error": "You already created this model repo", "url": f"{self.hub.endpoint}/{repo_id}"}
            self._send(
                409,
                json.dumps(body).encode(),
                {"Content-Type": "application/json", "X-Error-Code": "Conflict"},
            )
            return
        self._json(200, {"url": f"{self.hub.endpoint}/{repo_id}", "name": repo_id, "id": repo_id})

    def _validate_yaml(self) -> None:
        payload = json.loads(self._body() or b"{}")
        content = payload.get("content", "")
        with self.hub._lock:
            self.hub.yaml_validated.append(content)
        errors = []
        if not content.startswith("---\n") or "\n---\n" not in content[3:]:
            errors.append({"message": "README.md has no YAML front matter"})
        self._json(400 if errors else 200, {"errors": errors, "warnings": []})

    def _preupload(self, repo_id: str) -> None:
        self._check_write_auth()
        payload = json.loads(self._body() or b"{}")
        with self.hub._lock:
            self.hub._repo(repo_id)
        files = []
        for item in payload.get("files", []):
            sample = base64.b64decode(item.get("sample", ""))
            lfs = _is_lfs(item["path"], sample) or int(item.get("size", 0)) > 10 * 2**20
            files.append(
                {"path": item["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False}
            )
        self._json(200, {"files": files, "commitOid": None})

    def _lfs_batch(self, repo_id: str) -> None:
        self._check_write_auth()
        payload = json.loads(self._body() or b"{}")
        with self.hub._lock:
            self.hub._repo(repo_id)
            stored = set(self.hub.lfs_store)
        if "basic" not in payload.get("transfers", ["basic"]):
            raise _Error(400, "BadRequest", "this stand-in only offers the basic LFS transfer")
        objects = []
        for obj in payload.get("objects", []):
            entry: dict[str, Any] = {"oid": obj["oid"], "size": int(obj["size"]), "authenticated": True}
            if obj["oid"] not in stored:
                entry["actions"] = {
                    "upload": {"href": f"{self.hub.endpoint}/_lfs/{obj['oid']}", "header": {}}
                }
            objects.append(entry)
        self._send(
            200,
            json.dumps({"transfer": "basic", "objects": objects}).encode(),
            {"Content-Type": "application/vnd.git-lfs+json"},
        )

    def _lfs_put(self, oid: str) -> None:
        # like an S3 presigned URL: the href itself is the credential
        data = self._body()
        if hashlib.sha256(data).hexdigest() != oid:
            raise _Error(400, "BadDigest", "uploaded bytes do not hash to the object id")
        with self.hub._lock:
            self.hub.lfs_store[oid] = data
        self._send(200, b"")

    def _commit(self, repo_id: str, revision: str) -> None:
        self._check_write_auth()
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise _Error(400, "BadRequest", "the commit payload must start with a header line")
        files: dict[str, StoredFile] = {}
        deleted: list[str] = []
        with self.hub._lock:
            repo = self.hub._repo(repo_id)
            if repo.resolve(revision) is None:
                raise _Error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            for line in lines[1:]:
                key, value = line.get("key"), line.get("value", {})
                if key == "file":
                    files[value["path"]] = StoredFile(base64.b64decode(value["content"]), lfs=False)
                elif key == "lfsFile":
                    blob = self.hub.lfs_store.get(value["oid"])
                    if blob is None:
                        raise _Error(400, "BadRequest", f"LFS object {value['oid']} was never uploaded")
                    files[value["path"]] = StoredFile(blob, lfs=True)
                elif key in ("deletedFile", "deletedFolder"):
                    deleted.append(value["path"])
                else:
                    raise _Error(400, "BadRequest", f"unsupported commit operation {key!r}")
            branch = revision if revision in repo.branches else "main"
            oid = self.hub._commit_tree(repo_id, files, deleted=tuple(deleted), branch=branch)
        self._json(
            200,
            {
                "success": True,
                "commitOid": oid,
                "commitUrl": f"{self.hub.endpoint}/{repo_id}/commit/{oid}",
                "hookOutput": "",
                "pullRequestUrl": None,
            },
        )


def _parse_range(header: str, size: int) -> tuple[int, int]:
    """``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` -> inclusive (start, end)."""
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        raise _Error(416, "RangeNotSatisfiable", f"unsupported Range {header!r}")
    first, _, last = spec.strip().partition("-")
    if not first:
        n = int(last)
        return max(0, size - n), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    return start, min(end, size - 1)


@contextmanager
def running_hub(token: str | None = None) -> Iterator[HubStandIn]:
    hub = HubStandIn(token=token).start()
    try:
        yield hub
    finally:
        hub.stop()
