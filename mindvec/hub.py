"""Publish packages on the Hugging Face Hub and pull them, verifying before use.

``push`` uploads a package, its signers' public key files (``keys/<keyid>.pub``) and
a model card (``README.md``) whose body is rendered only from the signed manifest.

``pull`` works in a fixed order, and nothing that failed is ever left where a later
``pull`` or :func:`mindvec.open` would pick it up:

1. resolve the revision to a 40-hex commit (``model_info``) and record it;
2. download with ``hf_hub_download`` pinned to that commit, into mindvec's own staging
   folder (never the shared Hugging Face cache, which hands back a file for the same
   commit without any network call and checks only its size);
3. check the file's sha256 against the Hub's LFS etag (this protects the transfer only);
4. verify structure and signatures, then trust, scope and rollback
   (:func:`mindvec.policy.enforce`), before anything beyond the preamble, the manifest
   and the signatures is parsed; then the schema, the header and every tensor digest;
5. only then move the file into mindvec's cache
   (``<cache>/hub/<org>/<repo>/<commit>/<file>``). A file already in the cache is
   verified again, exactly as a download is, every time it is used.

A file that fails any step is moved to ``<cache>/quarantine/`` (renamed so that it no
longer ends in ``.mindvec``), with a ``.reason.txt`` beside it; the error says where (or
that it was deleted, when it could not be moved).

When the Hub cannot be reached, a cached file for the requested commit (or for a branch or
tag that an earlier pull resolved, ``<cache>/hub/<org>/<repo>/refs/``) is used only after the
same full verification; ``PullResult.offline`` says so. ``endpoint`` defaults to
``$HF_ENDPOINT`` read at call time, the cache to ``$MINDVEC_CACHE``.

``huggingface_hub`` is imported only when a Hub call is made (extra ``mindvec[hub]``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import time
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from mindvec.errors import MindvecError, UnverifiedError, UsageError

if TYPE_CHECKING:
    from mindvec.package import Package
    from mindvec.signing import PublicKey
    from mindvec.trust import State, TrustStore

__all__ = [
    "HfUrl",
    "HubUnreachable",
    "PullResult",
    "cache_root",
    "parse_hf_url",
    "pull",
    "pull_verified",
    "push",
    "render_model_card",
]

HF_SCHEME = "hf://"
KEYS_DIR = "keys"
CARD_NAME = "README.md"
PACKAGE_SUFFIX = ".mindvec"
_HASH_CHUNK = 1 << 20

_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
_SEGMENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_REVISION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,127}$")
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


# ---------------------------------------------------------------------------- names and URLs


@dataclass(frozen=True)
class HfUrl:
    """``hf://org/repo[@revision][/path/file.mindvec]``, parsed."""

    repo_id: str
    filename: str | None = None
    revision: str | None = None

    def __str__(self) -> str:
        rev = f"@{quote(self.revision, safe='')}" if self.revision else ""
        tail = f"/{self.filename}" if self.filename else ""
        return f"{HF_SCHEME}{self.repo_id}{rev}{tail}"


def check_repo_id(repo_id: str) -> str:
    if not isinstance(repo_id, str) or not _REPO_RE.match(repo_id) or ".." in repo_id:
        raise UsageError(
            "argument",
            f"repo id {_plain(repo_id)} must read 'namespace/name' (letters, digits, '_', '.', '-')",
        )
    return repo_id


def check_filename(filename: str) -> str:
    """A path inside a repo: '/'-separated safe segments, no '..', ending in ``.mindvec``."""
    segments = filename.split("/") if isinstance(filename, str) else []
    if (
        not segments
        or not all(_SEGMENT_RE.match(s) and s not in (".", "..") for s in segments)
        or not filename.endswith(PACKAGE_SUFFIX)
        or len(filename) > 255
    ):
        raise UsageError(
            "argument",
            f"file name {_plain(filename)} must be a relative path of plain segments "
            f"(letters, digits, '_', '.', '-') ending in {PACKAGE_SUFFIX}",
        )
    return filename


def check_revision(revision: str | None) -> str | None:
    if revision is None:
        return None
    if not isinstance(revision, str) or not _REVISION_RE.match(revision) or ".." in revision:
        raise UsageError("argument", f"revision {_plain(revision)} is not a branch, tag or commit name")
    return revision


def parse_hf_url(url: str) -> HfUrl:
    """Parse ``hf://org/repo[@rev]/file.mindvec`` (the file may be omitted when the repo holds one).

    A revision holding '/' (``refs/pr/1``) is written percent-encoded: ``@refs%2Fpr%2F1``.
    """
    if not isinstance(url, str) or not url.startswith(HF_SCHEME):
        raise UsageError(
            "argument", f"{_plain(url)} is not an hf:// URL; write hf://org/repo[@rev]/file.mindvec"
        )
    rest = url[len(HF_SCHEME) :]
    parts = rest.split("/")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise UsageError("argument", f"{_plain(url)} must name a repo: hf://org/repo[@rev]/file.mindvec")
    name, _, rev = parts[1].partition("@")
    revision = unquote(rev) if rev else None
    if rev == "" and "@" in parts[1]:
        raise UsageError("argument", f"{_plain(url)} has an empty revision after '@'")
    repo_id = check_repo_id(f"{parts[0]}/{name}")
    filename = "/".join(parts[2:]) or None
    return HfUrl(repo_id, check_filename(filename) if filename else None, check_revision(revision))


def is_hf_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(HF_SCHEME)


# ---------------------------------------------------------------------------- cache folders


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """mindvec's cache: ``cache_dir``, ``$MINDVEC_CACHE``, else ``$XDG_CACHE_HOME/mindvec``."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("MINDVEC_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mindvec"


def cached_path(root: Path, repo_id: str, commit: str, filename: str) -> Path:
    return root / "hub" / repo_id / commit / filename


def _quarantine(
    root: Path, repo_id: str, commit: str, filename: str, source: Path, reason: str
) -> Path | None:
    """Move ``source`` out of every place a pull or open looks; returns where it went (None: deleted)."""
    qdir = root / "quarantine" / repo_id.replace("/", "--") / commit
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = qdir / f"{filename.replace('/', '--')}.{stamp}.{os.getpid()}.rejected"
    try:
        qdir.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        os.chmod(target, 0o400)
        (qdir / (target.name + ".reason.txt")).write_text(reason + "\n", encoding="utf-8")
        return target
    except OSError:
        with contextlib.suppress(FileNotFoundError):
            source.unlink()
        return None


# ---------------------------------------------------------------------------- text escaping


_BIDI_AND_INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
_MD_PLAIN = set(" ,.;:?'\"/%@=$^")


def _visible(text: str) -> str:
    """Replace control, format (bidi, zero-width) and unassigned characters with ``\\u{XXXX}``."""
    out: list[str] = []
    for ch in text:
        if unicodedata.category(ch) in _BIDI_AND_INVISIBLE:
            out.append(f"\\u{{{ord(ch):04x}}}")
        else:
            out.append(ch)
    return "".join(out)


def _plain(value: object, limit: int = 200) -> str:
    """A value for an error message: repr'd, control characters escaped, shortened."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return _visible(text)


def md_escape(text: str) -> str:
    """Signed text as inert Markdown: only letters, digits, space and harmless punctuation stay literal.

    Everything else becomes an HTML character reference (so ``*``, ``[``, ``<``, ``|``, backticks
    and ``#`` cannot form markup), control and bidi characters become visible ``\\u{XXXX}``, and a
    line break becomes ``<br>``.
    """
    out: list[str] = []
    for i, ch in enumerate(text):
        if ch == "_" and 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum():
            out.append(ch)  # intraword: never emphasis
        elif ch == "-" and i > 0 and text[i - 1] != "\n":
            out.append(ch)  # a list marker or a rule only at the start of a line
        elif ch == "\n":
            out.append("<br>")
        elif ch == "\t":
            out.append(" ")
        elif unicodedata.category(ch) in _BIDI_AND_INVISIBLE:
            out.append(f"&#92;u{{{ord(ch):04x}}}")
        elif ch.isalnum() or ch in _MD_PLAIN:
            out.append(ch)
        else:
            out.append(f"&#{ord(ch)};")
    return "".join(out)


def _yaml_str(text: str) -> str:
    """A YAML double-quoted scalar (JSON string syntax with ASCII escapes is valid YAML)."""
    import json

    return json.dumps(text, ensure_ascii=True)


# ---------------------------------------------------------------------------- model card


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _t(value: Any) -> str:
    """Any manifest value as inert Markdown text."""
    return md_escape(str(value))


def _fmt_num(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return _t(value)


def _site_text(site: Any) -> str:
    site = _dict(site)
    return _t(f"{site.get('stack', '?')}:{site.get('layer', '?')}:{site.get('point', '?')}")


def _metric_cell(metrics: Any) -> str:
    if not isinstance(metrics, dict):
        return "–"
    return " / ".join(_fmt_num(metrics.get(k, "?")) for k in ("centered_cosine", "raw_cosine", "r2"))


def hf_base_models(manifest: dict[str, Any]) -> list[str]:
    """Hub repos of the package's models whose source is ``hf`` (for ``base_model``)."""
    found: list[str] = []
    for ref in _dict(manifest.get("models")).values():
        source = _dict(_dict(ref).get("source"))
        repo = source.get("repo")
        if (
            source.get("kind") == "hf"
            and isinstance(repo, str)
            and _REPO_RE.match(repo)
            and repo not in found
        ):
            found.append(repo)
    return found


def _source_text(source: dict[str, Any]) -> str:
    kind = source.get("kind")
    if kind == "hf":
        return f"hf {_t(source.get('repo'))} at {_t(source.get('revision'))}"
    if kind == "gguf":
        sha = source.get("file_sha256")
        return f"gguf {_t(source.get('quantization'))}, sha256 {sha.hex() if isinstance(sha, bytes) else '?'}"
    return f"local: {_t(source.get('note', ''))}"


def render_model_card(
    manifest: dict[str, Any],
    *,
    identity: bytes,
    keyids: Sequence[bytes],
    repo_id: str,
    filename: str,
    published_keys: Sequence[bytes] = (),
) -> str:
    """The README.md for a package: YAML front matter, then a body taken only from the signed manifest.

    Every string that comes from the manifest goes through :func:`md_escape` (in the front
    matter: a validated repo name in a JSON-quoted scalar), so a signed description can neither
    inject markup or HTML nor repaint a terminal. ``repo_id`` and ``filename`` are checked names.
    """
    check_repo_id(repo_id)
    check_filename(filename)
    pkg = _dict(manifest.get("package"))
    vectors = [v for v in _list(manifest.get("vectors")) if isinstance(v, dict)]
    mappings = [m for m in _list(manifest.get("mappings")) if isinstance(m, dict)]
    kinds = (["steering-vector"] if vectors else []) + (["cross-model-map"] if mappings else [])
    tags = ["mindvec", *kinds, "signed" if keyids else "unsigned"]
    lines = ["---", "library_name: mindvec", "tags:", *[f"- {_yaml_str(t)}" for t in tags]]
    bases = hf_base_models(manifest)
    if bases:
        lines += ["base_model:", *[f"- {_yaml_str(b)}" for b in bases]]
    lines += ["---", ""]

    add = lines.append
    add(f"# {_t(pkg.get('name') or pkg.get('id') or 'mindvec package')}")
    add("")
    add(
        f"This card was generated by mindvec from the signed manifest of `{filename}`. Everything "
        "below, except the instructions at the end, comes from the signed bytes. Verify before you use it."
    )
    add("")
    add("| field | value |")
    add("|---|---|")
    add(f"| package id | {_t(pkg.get('id', '?'))} |")
    add(f"| version | {_fmt_num(pkg.get('version', '?'))} |")
    add(f"| format | {_t(manifest.get('format', '?'))} |")
    add(f"| identity (sha256 of the manifest) | `{identity.hex()}` |")
    prov = _dict(manifest.get("provenance"))
    if prov:
        tool = _dict(prov.get("tool"))
        add(f"| creator | {_t(prov.get('creator', '?'))} |")
        add(f"| created | {_t(prov.get('created', '?'))} |")
        add(f"| tool | {_t(tool.get('name', '?'))} {_t(tool.get('version', ''))} |")
        add(f"| license | {_t(prov.get('license', '?'))} |")
        for ds in _list(prov.get("datasets")):
            ds = _dict(ds)
            sha = ds.get("sha256")
            add(
                f"| dataset | {_t(ds.get('name', '?'))}, {_fmt_num(ds.get('samples', '?'))} samples, "
                f"sha256 {sha.hex() if isinstance(sha, bytes) else '?'} |"
            )
    add("")
    add("## Description")
    add("")
    add(_t(pkg.get("description", "")) or "(none)")
    add("")
    add("## Intended effect")
    add("")
    add(_t(pkg.get("intended_effect", "")) or "(none)")
    add("")

    add("## Models")
    add("")
    add("| name | type | architecture | hidden size | layers | source |")
    add("|---|---|---|---|---|---|")
    for name, ref in sorted(_dict(manifest.get("models")).items()):
        ref = _dict(ref)
        add(
            f"| {_t(name)} | {_t(ref.get('model_type', '?'))} | {_t(ref.get('architecture', '–'))} "
            f"| {_fmt_num(ref.get('hidden_size', '?'))} | {_fmt_num(ref.get('num_layers', '?'))} "
            f"| {_source_text(_dict(ref.get('source')))} |"
        )
    add("")

    if vectors:
        add("## Steering vectors")
        add("")
        add("| name | model | operation | scale | scale range | positions | sites | method |")
        add("|---|---|---|---|---|---|---|---|")
        for vec in vectors:
            sites = ", ".join(_site_text(_dict(s).get("site")) for s in _list(vec.get("sites")))
            rng = _list(vec.get("scale_range")) or ["?"]
            add(
                f"| {_t(vec.get('name', '?'))} | {_t(vec.get('model', '?'))} "
                f"| {_t(vec.get('operation', '?'))} "
                f"| {_fmt_num(vec.get('scale', '?'))} | {_fmt_num(rng[0])} to {_fmt_num(rng[-1])} "
                f"| {_fmt_num(vec.get('positions', '?'))} | {sites} "
                f"| {_t(_dict(vec.get('method')).get('kind', '?'))} |"
            )
        add("")

    if mappings:
        add("## Cross-model maps")
        add("")
        add(
            "Held-out metrics, as centered cosine / raw cosine / R². Read the centered cosine: most of a "
            "raw cosine comes from the mean direction. Baselines are the same metrics for maps that "
            "should not work."
        )
        add("")
        add(
            "| name | source site | target site | form | fit | held-out | shuffled baseline "
            "| mean baseline | embedding baseline | train / test samples |"
        )
        add("|---|---|---|---|---|---|---|---|---|---|")
        for mp in mappings:
            src, tgt = _dict(mp.get("source")), _dict(mp.get("target"))
            metrics = _dict(mp.get("metrics"))
            base = _dict(metrics.get("baselines"))
            train, test = metrics.get("train_samples", "?"), metrics.get("test_samples", "?")
            samples = f"{_fmt_num(train)} / {_fmt_num(test)}"
            add(
                f"| {_t(mp.get('name', '?'))} | {_t(src.get('model', '?'))} {_site_text(src.get('site'))} "
                f"| {_t(tgt.get('model', '?'))} {_site_text(tgt.get('site'))} | {_t(mp.get('form', '?'))} "
                f"| {_t(_dict(mp.get('fit')).get('method', '?'))} | {_metric_cell(metrics.get('held_out'))} "
                f"| {_metric_cell(base.get('shuffled'))} | {_metric_cell(base.get('mean'))} "
                f"| {_metric_cell(base.get('embedding'))} | {samples} |"
            )
        add("")

    corr = [c for c in _list(manifest.get("correspondences")) if isinstance(c, dict)]
    if corr:
        ranked = sorted(corr, key=lambda c: -c["score"] if isinstance(c.get("score"), (int, float)) else 0.0)
        add(f"## Layer correspondences (best {min(10, len(ranked))} of {len(ranked)})")
        add("")
        add("| source | target | score | metric |")
        add("|---|---|---|---|")
        for c in ranked[:10]:
            s, t = _dict(c.get("source")), _dict(c.get("target"))
            add(
                f"| {_t(s.get('model', '?'))} {_site_text(s.get('site'))} "
                f"| {_t(t.get('model', '?'))} {_site_text(t.get('site'))} "
                f"| {_fmt_num(c.get('score', '?'))} | {_t(c.get('metric', '?'))} |"
            )
        add("")

    tensors = sorted(_dict(_dict(manifest.get("payload")).get("tensors")))
    add("## Tensors")
    add("")
    add(f"{len(tensors)} tensors, each bound to the signature by its sha256:")
    add("")
    lines += [f"- {_t(name)}" for name in tensors[:32]]
    if len(tensors) > 32:
        add(f"- and {len(tensors) - 32} more")
    add("")

    add("## Signatures")
    add("")
    if keyids:
        add("| key id | public key file in this repo |")
        add("|---|---|")
        for kid in keyids:
            published = f"`{KEYS_DIR}/{kid.hex()}.pub`" if kid in published_keys else "(not published here)"
            add(f"| `{kid.hex()}` | {published} |")
    else:
        add("This package is **unsigned**. mindvec refuses it unless you pass `allow_unsigned=True`.")
    add("")

    add("## Pull and verify")
    add("")
    add(
        "`mindvec pull` resolves the revision to a commit, checks the download against the LFS sha256, "
        "and verifies the signature, your trust store and your rollback state before anything else is "
        "parsed. Check the key id above against one the publisher gave you elsewhere: a key file in "
        "the same repo proves nothing by itself."
    )
    add("")
    add("```sh")
    if keyids:
        first = keyids[0].hex()
        if keyids[0] in published_keys:
            add(f"# download {KEYS_DIR}/{first}.pub from this repo; check key id {first} with the publisher")
            key_file = f"{first}.pub"
        else:
            add(f"# get the publisher's public key (key id {first}) from them")
            key_file = "PUBLISHER.pub"
        add(f"mindvec trust add {key_file} --principal PUBLISHER --repos {repo_id}")
        add(f"mindvec pull {repo_id} {filename}")
        add("# or pin the publisher's key on first use, like SSH known_hosts")
        add(f"mindvec pull {repo_id} {filename} --tofu")
    else:
        add(f"mindvec pull {repo_id} {filename} --allow-unsigned")
    add("```")
    add("")
    add("```python")
    add("import mindvec")
    add("from mindvec.hub import pull")
    add("")
    add(f'package = pull("{repo_id}", "{filename}", tofu=True)')
    add(f'handle = mindvec.steer(model, "hf://{repo_id}/{filename}")')
    add("```")
    add("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- huggingface_hub access


def _hf() -> Any:
    try:
        import huggingface_hub
    except ImportError:
        raise UsageError(
            "hub", "the Hub needs huggingface_hub; install it with: pip install 'mindvec[hub]'"
        ) from None
    return huggingface_hub


def _endpoint(endpoint: str | None) -> str | None:
    """``endpoint``, else ``$HF_ENDPOINT`` read now (huggingface_hub reads it only once, at import)."""
    return endpoint or os.environ.get("HF_ENDPOINT") or None


def _hub_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a Hub call may raise (HTTP, transport, file system, malformed replies)."""
    hf = _hf()
    errors: list[type[BaseException]] = [hf.errors.HfHubHTTPError, OSError, ValueError, KeyError]
    with contextlib.suppress(ImportError):
        import httpx2  # huggingface_hub >= 2

        errors.append(httpx2.HTTPError)
    with contextlib.suppress(ImportError):
        import httpx

        errors.append(httpx.HTTPError)
    return tuple(errors)


class HubUnreachable(UsageError):
    """The Hub could not be reached (offline mode, connection refused, timeout)."""


def _unreachable(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionError):  # includes huggingface_hub's OfflineModeIsEnabled
        return True
    with contextlib.suppress(ImportError):
        import httpx2

        if isinstance(exc, httpx2.TransportError):
            return True
    return False


def _hub_error(action: str, exc: BaseException, endpoint: str | None) -> UsageError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    where = endpoint or os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    hint = {
        "RepositoryNotFoundError": "no such repo, or it is private: check the repo id, pass a token",
        "RevisionNotFoundError": "no such branch, tag or commit in the repo: check the revision",
        "RemoteEntryNotFoundError": "no such file at that revision: check the file name",
        "EntryNotFoundError": "no such file at that revision: check the file name",
        "GatedRepoError": "the repo is gated: accept its terms on the Hub and pass a token",
    }.get(
        type(exc).__name__,
        "check the repo id, the revision, your token (--token, HF_TOKEN) and network access",
    )
    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        hint = "HF_HUB_OFFLINE is set, which blocks every Hub call; unset it to reach the Hub"
    cls = HubUnreachable if _unreachable(exc) else UsageError
    return cls("hub", f"{action} at {where} failed ({type(exc).__name__}: {_visible(first[:300])}); {hint}")


# ---------------------------------------------------------------------------- push


def _load_public_keys(public_key: Any) -> list[PublicKey]:
    from mindvec.signing import PublicKey

    if public_key is None:
        return []
    items = public_key if isinstance(public_key, (list, tuple)) else [public_key]
    keys: list[PublicKey] = []
    for item in items:
        if isinstance(item, PublicKey):
            keys.append(item)
        elif hasattr(item, "public_key") and isinstance(item.public_key, PublicKey):
            keys.append(item.public_key)  # a SecretKey: only its public half is used
        else:
            keys.append(PublicKey.load(item))
    return keys


def push(
    path: str | os.PathLike[str],
    repo_id: str,
    *,
    filename: str | None = None,
    revision: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    allow_unsigned: bool = False,
    public_key: Any = None,
    create: bool = True,
    private: bool | None = None,
    commit_message: str | None = None,
) -> str:
    """Upload a package, its signers' public key files and a model card in one commit.

    ``public_key``: a public key file path, a :class:`~mindvec.signing.PublicKey` (or a
    list of them) for the package's signers; when omitted, keys are looked up by key id in
    the default trust store. Every signature is checked against its key before anything is
    uploaded; a package that does not verify, or is unsigned without ``allow_unsigned=True``,
    is refused. Returns the commit URL.
    """
    from mindvec import package as package_mod

    check_repo_id(repo_id)
    check_revision(revision)
    src = Path(path)
    name = check_filename(filename if filename is not None else src.name)
    with package_mod.open(src) as pkg:
        pkg.check_integrity()  # never publish a damaged file
        manifest, manifest_bytes, identity = pkg.manifest, pkg.manifest_bytes, pkg.identity
        signatures = list(pkg.signatures)
    keyids = [entry.keyid for entry in signatures]
    if not keyids and not allow_unsigned:
        raise UnverifiedError(
            "no-signature",
            f"{src} is unsigned; sign it first (mindvec sign {src} --key KEY) or pass "
            "allow_unsigned=True (--allow-unsigned) to publish it unsigned",
        )
    keys = _load_public_keys(public_key)
    if public_key is None and keyids:
        from mindvec.trust import TrustStore

        store = TrustStore.load()
        keys = [k for k in (store.key_for(kid) for kid in keyids) if k is not None]
    by_id: dict[bytes, PublicKey] = {k.keyid: k for k in keys}
    for key in keys:
        if key.keyid not in keyids:
            raise UsageError(
                "argument",
                f"public key {key.keyid_hex} did not sign {src}; pass the signer's public key file",
            )
    for entry in signatures:
        signer = by_id.get(entry.keyid)
        if signer is not None and not signer.verify_manifest(manifest_bytes, entry):
            raise UnverifiedError(
                "bad-signature",
                f"the signature by {entry.keyid.hex()} on {src} does not verify; re-sign the package before "
                "publishing it",
            )
    if keyids and not by_id:
        raise UsageError(
            "argument",
            f"no public key for the signer(s) {', '.join(k.hex() for k in keyids)} of {src}; pass "
            "public_key= (--public-key FILE.pub) so that pullers can find it",
        )

    card = render_model_card(
        manifest,
        identity=identity,
        keyids=keyids,
        repo_id=repo_id,
        filename=name,
        published_keys=list(by_id),
    )
    hf = _hf()
    endpoint = _endpoint(endpoint)
    api = hf.HfApi(endpoint=endpoint, token=token, library_name="mindvec")
    operations = [hf.CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(src))]
    for kid, key in sorted(by_id.items()):
        line = key.to_line(f"mindvec signer of {name}") + "\n"
        operations.append(
            hf.CommitOperationAdd(path_in_repo=f"{KEYS_DIR}/{kid.hex()}.pub", path_or_fileobj=line.encode())
        )
    operations.append(hf.CommitOperationAdd(path_in_repo=CARD_NAME, path_or_fileobj=card.encode("utf-8")))
    pkg_meta = manifest.get("package", {})
    message = commit_message or f"mindvec push {name} (version {pkg_meta.get('version', '?')})"
    try:
        if create:
            api.create_repo(repo_id, exist_ok=True, private=private)
        info = api.create_commit(repo_id, operations=operations, commit_message=message, revision=revision)
    except _hub_errors() as exc:
        raise _hub_error(f"publishing {name} to {repo_id}", exc, endpoint) from None
    return str(info.commit_url)


# ---------------------------------------------------------------------------- pull


@dataclass
class PullResult:
    """What a verified pull produced."""

    package: Package
    repo_id: str
    filename: str
    revision: str | None
    commit: str
    sha256: str
    path: Path
    from_cache: bool
    report: Any = None
    offline: bool = False  # the Hub was unreachable: the cached copy was verified, not re-compared


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class _Resolved:
    commit: str
    filename: str
    etag: str
    size: int | None
    key_files: list[str]


def _resolve(
    api: Any,
    hf: Any,
    repo_id: str,
    filename: str | None,
    revision: str | None,
    token: str | None,
    endpoint: str | None,
) -> _Resolved:
    try:
        info = api.model_info(repo_id, revision=revision, files_metadata=True)
    except _hub_errors() as exc:
        raise _hub_error(f"resolving {repo_id}@{revision or 'main'}", exc, endpoint) from None
    commit = info.sha
    if not isinstance(commit, str) or not _COMMIT_RE.match(commit):
        raise UnverifiedError(
            "transfer", f"the Hub answered a revision of {repo_id} that is not a 40-hex commit"
        )
    if revision is not None and _COMMIT_RE.match(revision) and commit != revision:
        raise UnverifiedError(
            "transfer", f"asked for commit {revision} of {repo_id}, the Hub answered {commit}"
        )
    siblings = {s.rfilename: s for s in (info.siblings or [])}
    if filename is None:
        candidates = sorted(n for n in siblings if n.endswith(PACKAGE_SUFFIX))
        if len(candidates) != 1:
            listing = ", ".join(candidates[:10]) or "none"
            raise UsageError(
                "not-found",
                f"{repo_id}@{commit[:12]} holds {len(candidates)} .mindvec files ({listing}); "
                "name the one to pull",
            )
        filename = candidates[0]
    check_filename(filename)
    sibling = siblings.get(filename)
    if sibling is None:
        raise UsageError("not-found", f"{repo_id} has no file {filename} at commit {commit}; check the name")
    key_files = sorted(n for n in siblings if n.startswith(f"{KEYS_DIR}/") and n.endswith(".pub"))
    url = hf.hf_hub_url(repo_id, filename, revision=commit, endpoint=endpoint)
    try:
        meta = hf.get_hf_file_metadata(url, token=token, endpoint=endpoint)
    except _hub_errors() as exc:
        raise _hub_error(f"reading the metadata of {repo_id}/{filename}", exc, endpoint) from None
    etag = (meta.etag or "").lower()
    if meta.commit_hash is not None and meta.commit_hash != commit:
        raise UnverifiedError(
            "transfer", f"{repo_id}/{filename}: the Hub served commit {meta.commit_hash}, not {commit}; retry"
        )
    if not _SHA256_RE.match(etag):
        raise UnverifiedError(
            "transfer",
            f"{repo_id}/{filename} has no LFS sha256 etag, so its transfer cannot be checked; "
            "the publisher should upload it with mindvec push (which stores it in LFS)",
        )
    lfs = getattr(sibling, "lfs", None)
    lfs_sha = getattr(lfs, "sha256", None) if lfs is not None else None
    if lfs_sha is not None and str(lfs_sha).lower() != etag:
        raise UnverifiedError(
            "transfer",
            f"{repo_id}/{filename}: the repo listing and the download disagree on its sha256; retry",
        )
    return _Resolved(commit, filename, etag, meta.size, key_files)


def _fetch_pinned(
    hf: Any, repo_id: str, name: str, commit: str, cache: Path, token: str | None, endpoint: str | None
) -> Path:
    """hf_hub_download of ``name`` pinned to ``commit`` into a private ``cache`` (never HF's shared one)."""
    try:
        got = hf.hf_hub_download(
            repo_id,
            name,
            revision=commit,
            cache_dir=str(cache),
            force_download=True,
            token=token,
            endpoint=endpoint,
            library_name="mindvec",
        )
    except _hub_errors() as exc:
        raise _hub_error(f"downloading {repo_id}/{name}@{commit[:12]}", exc, endpoint) from None
    return Path(got).resolve()


def _download(
    hf: Any,
    repo_id: str,
    filename: str,
    commit: str,
    staging: Path,
    token: str | None,
    endpoint: str | None,
) -> Path:
    """The package, pinned to ``commit``, moved out of the private cache to a plain file in ``staging``."""
    blob = _fetch_pinned(hf, repo_id, filename, commit, staging / "hf", token, endpoint)
    target = staging / "file"
    os.replace(blob, target)
    return target


def _publisher_keys(
    hf: Any,
    repo_id: str,
    commit: str,
    key_files: list[str],
    staging: Path,
    token: str | None,
    endpoint: str | None,
) -> dict[bytes, PublicKey]:
    """Public key files the repo publishes at ``commit`` (a hint for TOFU, never trust by themselves)."""
    from mindvec.signing import PublicKey

    keys: dict[bytes, PublicKey] = {}
    for name in key_files[:16]:
        got = _fetch_pinned(hf, repo_id, name, commit, staging / "hf-keys", token, endpoint)
        with contextlib.suppress(UsageError):
            key = PublicKey.load(got)
            keys[key.keyid] = key
    return keys


@dataclass
class _Policy:
    trust: TrustStore
    state: State | None
    tofu: bool
    allow_unsigned: bool
    allow_untrusted: bool
    threshold: int
    now: Any


def _offered_key(path: Path, offered: dict[bytes, PublicKey]) -> PublicKey | None:
    """The published key (``keys/<keyid>.pub``) of the first signer of ``path``, for TOFU.

    Reads step 1 only (preamble, manifest, signature block). The key is a candidate, never
    trust by itself: the policy pins it only after it produced a valid signature, and refuses a
    key other than the pinned one later.
    """
    from mindvec import container

    for entry in container.read_raw(path).signatures:
        key = offered.get(entry.keyid)
        if key is not None:
            return key
    return None


def _gate(path: Path, repo_id: str, policy: _Policy, tofu_key: PublicKey | None) -> None:
    """Refuse on signature, trust, scope, TOFU pin or rollback from the preamble, manifest and
    signatures alone, before the payload is parsed at all.

    This only refuses earlier; :func:`mindvec.policy.enforce` (run next, on the whole file)
    stays the one authority that accepts. A manifest whose package id or version cannot be read
    is left to that full verification, which names the defect.
    """
    from mindvec import canonical, container
    from mindvec import policy as policy_mod
    from mindvec.trust import TrustEntry

    raw = container.read_raw(path)  # structure and bounds; reads no payload byte
    store = policy.trust
    pinned = policy.state.pin(repo_id) if policy.state is not None else None
    offered = pinned or tofu_key
    if offered is not None and not store.is_revoked(offered.keyid):
        store = store.with_entries([TrustEntry(f"tofu:{repo_id}", offered, repos=(repo_id,))])
    results: list[policy_mod.SignatureResult] = []
    entries = [(entry, "embedded") for entry in raw.signatures]
    policy_mod.check_signatures(raw.manifest_bytes, entries, store, results)  # bad-signature
    manifest = canonical.decode(raw.manifest_bytes)
    meta = manifest.get("package") if isinstance(manifest, dict) else None
    package_id = meta.get("id") if isinstance(meta, dict) else None
    version = meta.get("version") if isinstance(meta, dict) else None
    if not isinstance(package_id, str) or not isinstance(version, int) or isinstance(version, bool):
        return
    error = policy_mod.decide(
        results,
        store,
        package_id=package_id,
        repo=repo_id,
        now=policy_mod.resolve_now(policy.now),
        threshold=policy.threshold,
    )
    if pinned is not None and (error is None or error.code not in ("revoked", "expired", "scope")):
        if not any(r.valid and r.keyid == pinned.keyid_hex for r in results):
            signers = ", ".join(sorted(e.keyid.hex() for e in raw.signatures)) or "nobody (it is unsigned)"
            error = UnverifiedError(
                "key-pin",
                f"{repo_id} is pinned to the publisher key {pinned.keyid_hex} (trust on first use), but this "
                f"file is signed by {signers}: the publisher's key changed. If they rotated keys, apply "
                "their rotation record (mindvec trust rotate); otherwise do not use this file",
            )
    if error is not None and not (
        (error.code == "no-signature" and policy.allow_unsigned)
        or (error.code == "untrusted-key" and policy.allow_untrusted)
    ):
        raise error
    if policy.state is not None:
        policy.state.check(package_id, version, hashlib.sha256(raw.manifest_bytes).digest())  # rollback


def _verify_file(path: Path, repo_id: str, policy: _Policy, offered: dict[bytes, PublicKey]) -> Any:
    """Verify a local file completely; returns the :class:`~mindvec.verification.VerifyReport`.

    First :func:`_gate` decides signature, trust, scope, pin and rollback from the preamble,
    manifest and signatures only. Then :func:`mindvec.policy.enforce` runs the whole fixed check
    order on the file (structure, signatures over the exact manifest bytes, decode, schema,
    header, every tensor digest, trust policy, rollback), records the version in the state file
    and pins the publisher key on first use. The first failure raises.
    """
    from mindvec import policy as policy_mod

    tofu_key = _offered_key(path, offered) if policy.tofu else None
    _gate(path, repo_id, policy, tofu_key)
    return policy_mod.enforce(
        path,
        trust=policy.trust,
        state=policy.state,
        threshold=policy.threshold,
        allow_unsigned=policy.allow_unsigned,
        allow_untrusted=policy.allow_untrusted,
        repo=repo_id,
        now=policy.now,
        tofu_key=tofu_key,
    )


@contextlib.contextmanager
def _staging(root: Path) -> Iterator[Path]:
    base = root / "staging"
    base.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="pull-", dir=base))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _reject(
    exc: MindvecError, root: Path, repo_id: str, commit: str, filename: str, source: Path
) -> MindvecError:
    """Quarantine ``source`` and re-raise ``exc`` with where the file went."""
    reason = f"{exc.code}: {exc.message}"
    where = _quarantine(root, repo_id, commit, filename, source, reason)
    if where is not None:
        note = f" The rejected file was quarantined at {where} (it will never be used); delete it when done."
    else:
        note = " The rejected file was deleted."
    return type(exc)(exc.code, exc.message.rstrip(".") + "." + note)


def pull_verified(
    repo_id: str,
    filename: str | None = None,
    *,
    revision: str | None = None,
    trust: TrustStore | str | os.PathLike[str] | None = None,
    tofu: bool = False,
    state: State | str | os.PathLike[str] | None = None,
    allow_unsigned: bool = False,
    allow_untrusted: bool = False,
    threshold: int = 1,
    endpoint: str | None = None,
    token: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    now: Any = None,
) -> PullResult:
    """:func:`pull`, returning the package together with the commit, sha256 and verification report."""
    from mindvec.trust import State, TrustStore

    check_repo_id(repo_id)
    if filename is not None:
        check_filename(filename)
    check_revision(revision)
    store = TrustStore.coerce(trust)
    state_obj = State.coerce(state)
    if tofu and state_obj is None:
        state_obj = State()  # TOFU pins live in the state file; default path when none is given
    policy = _Policy(store, state_obj, tofu, allow_unsigned, allow_untrusted, threshold, now)
    root = cache_root(cache_dir)
    hf = _hf()
    endpoint = _endpoint(endpoint)
    api = hf.HfApi(endpoint=endpoint, token=token, library_name="mindvec")

    # 1. resolve the revision to a commit, and record it
    try:
        resolved = _resolve(api, hf, repo_id, filename, revision, token, endpoint)
    except HubUnreachable:
        cached = _offline_candidate(root, repo_id, filename, revision)
        if cached is None:
            raise
        return _verify_cached_offline(cached, root, repo_id, revision, policy)
    commit, name = resolved.commit, resolved.filename
    final = cached_path(root, repo_id, commit, name)
    _record_ref(root, repo_id, revision, commit)

    with _staging(root) as staging:
        offered: dict[bytes, PublicKey] = {}
        if tofu and resolved.key_files:
            offered = _publisher_keys(hf, repo_id, commit, resolved.key_files, staging, token, endpoint)

        # a file already in mindvec's cache is verified again, exactly like a download
        if final.is_file():
            if _sha256_file(final) == resolved.etag:
                try:
                    report = _verify_file(final, repo_id, policy, offered)
                except MindvecError as exc:
                    raise _reject(exc, root, repo_id, commit, name, final) from None
                return _result(report, final, repo_id, name, revision, commit, resolved.etag, from_cache=True)
            damaged = UnverifiedError(
                "transfer", f"the cached copy of {repo_id}/{name}@{commit[:12]} differs from the Hub's sha256"
            )
            _reject(damaged, root, repo_id, commit, name, final)  # then download it again

        # 2. download pinned to the commit, into mindvec's own staging folder
        staged = _download(hf, repo_id, name, commit, staging, token, endpoint)
        try:
            # 3. the transfer: size and sha256 against the Hub's LFS etag
            size = staged.stat().st_size
            if resolved.size is not None and size != resolved.size:
                raise UnverifiedError(
                    "transfer",
                    f"{repo_id}/{name}: downloaded {size} bytes, the Hub announced {resolved.size}; "
                    "retry the pull",
                )
            got = _sha256_file(staged)
            if got != resolved.etag:
                raise UnverifiedError(
                    "transfer",
                    f"{repo_id}/{name}@{commit[:12]}: the downloaded bytes hash to {got}, not the Hub's LFS "
                    f"sha256 {resolved.etag}; the transfer was corrupted or tampered with, retry the pull",
                )
            # 4. structure and signatures first, then the rest, then trust, scope, pin and rollback
            report = _verify_file(staged, repo_id, policy, offered)
        except MindvecError as exc:
            raise _reject(exc, root, repo_id, commit, name, staged) from None
        verified = report.package
        manifest_bytes, signatures = verified.manifest_bytes, list(verified.signatures)
        verified.close()

        # 5. only now into mindvec's cache
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, final)
        with contextlib.suppress(OSError):
            os.chmod(final, 0o444)

    # hand out the cached file: same manifest and signatures as verified, tensors checked on access
    from mindvec.package import open as open_package

    try:
        package = open_package(final)
    except MindvecError as exc:
        raise _reject(exc, root, repo_id, commit, name, final) from None
    if package.manifest_bytes != manifest_bytes or list(package.signatures) != signatures:
        package.close()
        changed = UnverifiedError(
            "digest-mismatch", f"{final} changed between verification and use; pull again"
        )
        raise _reject(changed, root, repo_id, commit, name, final)
    report.package = package
    return _result(report, final, repo_id, name, revision, commit, got, from_cache=False)


def _result(
    report: Any,
    path: Path,
    repo_id: str,
    name: str,
    revision: str | None,
    commit: str,
    sha: str,
    *,
    from_cache: bool,
) -> PullResult:
    return PullResult(
        package=report.package,
        repo_id=repo_id,
        filename=name,
        revision=revision,
        commit=commit,
        sha256=sha,
        path=path,
        from_cache=from_cache,
        report=report,
    )


def _offline_candidate(root: Path, repo_id: str, filename: str | None, revision: str | None) -> Path | None:
    """The cached file for ``revision`` (a commit, or a branch/tag resolved by an earlier pull)."""
    if revision is not None and _COMMIT_RE.match(revision):
        commit = revision
    else:
        try:
            ref = root / "hub" / repo_id / "refs" / quote(revision or "main", safe="")
            commit = ref.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        if not _COMMIT_RE.match(commit):
            return None
    folder = root / "hub" / repo_id / commit
    if filename is not None:
        path = folder / filename
        return path if path.is_file() else None
    found = sorted(p for p in folder.glob(f"**/*{PACKAGE_SUFFIX}") if p.is_file())
    return found[0] if len(found) == 1 else None


def _verify_cached_offline(
    path: Path, root: Path, repo_id: str, revision: str | None, policy: _Policy
) -> PullResult:
    """Without the Hub, a cached file is used only after the full verification (no etag to compare)."""
    commit = path.relative_to(root / "hub" / repo_id).parts[0]
    name = path.relative_to(root / "hub" / repo_id / commit).as_posix()
    try:
        report = _verify_file(path, repo_id, policy, {})
    except MindvecError as exc:
        raise _reject(exc, root, repo_id, commit, name, path) from None
    result = _result(report, path, repo_id, name, revision, commit, _sha256_file(path), from_cache=True)
    result.offline = True
    return result


def _record_ref(root: Path, repo_id: str, revision: str | None, commit: str) -> None:
    """Remember which commit ``revision`` resolved to (``<cache>/hub/<repo>/refs/<revision>``)."""
    refs = root / "hub" / repo_id / "refs"
    try:
        refs.mkdir(parents=True, exist_ok=True)
        (refs / quote(revision or "main", safe="")).write_text(commit + "\n", encoding="ascii")
    except OSError:
        pass


def pull(
    repo_id: str,
    filename: str | None = None,
    *,
    revision: str | None = None,
    trust: TrustStore | str | os.PathLike[str] | None = None,
    tofu: bool = False,
    state: State | str | os.PathLike[str] | None = None,
    allow_unsigned: bool = False,
    allow_untrusted: bool = False,
    endpoint: str | None = None,
    token: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    threshold: int = 1,
    now: Any = None,
) -> Package:
    """Download a package from the Hub and return it only once it is proven (see the module doc).

    ``repo_id`` may also be an ``hf://org/repo[@rev][/file.mindvec]`` URL. ``trust``: a trust
    store or its path (default: the XDG default). ``tofu=True`` pins the publisher's key for this
    repo in the state file on first use and refuses a different key later (``key-pin``); a pinned
    key counts as trusted for this repo only. ``state``: the rollback/TOFU state file.
    """
    if is_hf_url(repo_id):
        url = parse_hf_url(repo_id)
        if (filename is not None and url.filename) or (revision is not None and url.revision):
            raise UsageError("argument", "give the file and revision either in the hf:// URL or as arguments")
        repo_id, filename, revision = url.repo_id, filename or url.filename, revision or url.revision
    return pull_verified(
        repo_id,
        filename,
        revision=revision,
        trust=trust,
        tofu=tofu,
        state=state,
        allow_unsigned=allow_unsigned,
        allow_untrusted=allow_untrusted,
        threshold=threshold,
        endpoint=endpoint,
        token=token,
        cache_dir=cache_dir,
        now=now,
    ).package
