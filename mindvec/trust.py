"""The trust store: which keys may sign which packages, and which keys are revoked.

A text file in the spirit of OpenSSH ``allowed_signers`` (grammar in the spec,
section "Trust store"). One entry per line::

    principal [options] ed25519 <base64 key> [comment]
    @revoked ed25519 <base64 key> [comment]
    # comment

``options`` is one token of comma-separated ``name=value`` pairs; a value holding a
comma is double-quoted. Known options:

* ``packages="glob,glob"`` -- package ids the key may sign (``fnmatch``; ``*`` also
  matches ``/``). Absent: any package.
* ``repos="org/*"`` -- Hub repos the key may publish from. Checked only when the
  package comes from a repo (``Policy.repo``).
* ``valid-after=YYYYMMDD[HHMMSS]Z`` (inclusive), ``valid-before=...`` (exclusive):
  the key's validity window, in UTC (the ``Z`` is optional, times are always UTC).

A key may appear on several lines (several principals or scopes); a signature is
trusted when any line for its key is inside its window and scope. ``@revoked`` always
wins. The default path is ``$XDG_CONFIG_HOME/mindvec/allowed_signers``
(``~/.config/mindvec/allowed_signers``). Writers take ``<path>.lock`` and rewrite the
file atomically; comments and order are kept.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from mindvec._fs import atomic_write, locked, make_parents, read_capped
from mindvec.errors import UsageError
from mindvec.keys import PublicKey
from mindvec.limits import MAX_TRUST_STORE
from mindvec.rotation import RotationRecord
from mindvec.signing import ALG
from mindvec.times import format_time, parse_time

__all__ = [
    "Revocation",
    "TrustEntry",
    "TrustStore",
    "default_trust_path",
]

REVOKED_MARKER = "@revoked"
OPTION_NAMES = ("packages", "repos", "valid-after", "valid-before")
#: a principal: no space, no quote, no "=" (that would read as an option), not "#" or "@" first
_PRINCIPAL = re.compile(r"[^\s\"#@=][^\s\"=]{0,255}")
#: the only characters that separate tokens (the grammar's WSP)
_WSP = " \t"
_WSP_RUN = re.compile(r"[ \t]+")
#: Unicode categories a trust store may not hold anywhere (controls other than HTAB, format
#: characters such as bidi overrides, line and paragraph separators, spaces other than SP):
#: each could make a line read differently to mindvec and to a person or to grep
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"})


def _forbidden(char: str) -> bool:
    return char not in _WSP and unicodedata.category(char) in _FORBIDDEN_CATEGORIES


def store_lines(text: str, source: str = "trust store") -> list[str]:
    """The store's lines by the grammar: LF ends a line (a CR right before it is dropped);
    any other line break, control, format or non-ASCII space character is ``trust-store``."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the LF that ends the last line
    out = []
    for number, line in enumerate(lines, start=1):
        if line.endswith("\r"):
            line = line[:-1]
        bad = next((c for c in line if _forbidden(c)), None)
        if bad is not None:
            raise UsageError(
                "trust-store",
                f"{source}: line {number}: character U+{ord(bad):04X} is not allowed in a trust store; "
                "tokens are separated by spaces or tabs and lines end with LF; fix or delete that line",
            )
        out.append(line)
    return out


def default_trust_path() -> Path:
    """``$XDG_CONFIG_HOME/mindvec/allowed_signers``, or ``~/.config/...`` when unset."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "mindvec" / "allowed_signers"


def _split_tokens(line: str) -> list[str]:
    """Split on whitespace outside double quotes (quotes are kept in the token)."""
    tokens: list[str] = []
    current: list[str] = []
    quoted = False
    for char in line:
        if char == '"':
            quoted = not quoted
        if char in _WSP and not quoted:
            if current:
                tokens.append("".join(current))
                current = []
            continue
        current.append(char)
    if quoted:
        raise ValueError("a double quote is not closed")
    if current:
        tokens.append("".join(current))
    return tokens


def _split_options(text: str) -> list[tuple[str, str]]:
    """``a=1,b="x,y"`` -> [("a", "1"), ("b", "x,y")]."""
    result: list[tuple[str, str]] = []
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    for part in parts:
        name, sep, value = part.partition("=")
        if not sep or not name:
            raise ValueError(f"option {part!r} must read name=value")
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if '"' in value:
            raise ValueError(f"option {name!r} has a stray double quote")
        result.append((name, value))
    return result


def _globs(value: str, name: str) -> tuple[str, ...]:
    globs = tuple(g.strip() for g in value.split(","))
    if not globs or any(not g or any(c in _WSP for c in g) for g in globs):
        raise ValueError(f"{name} must be a comma-separated list of non-empty globs")
    return globs


@dataclass(frozen=True)
class TrustEntry:
    """One trusted key for one principal, with its scope and validity window."""

    principal: str
    key: PublicKey
    packages: tuple[str, ...] = ()
    repos: tuple[str, ...] = ()
    valid_after: datetime | None = None
    valid_before: datetime | None = None
    comment: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.principal, str) or not _PRINCIPAL.fullmatch(self.principal):
            raise UsageError(
                "argument",
                f"principal {self.principal!r} must be one word of at most 256 characters, without "
                "spaces, quotes or '=', not starting with '#' or '@'",
            )
        if any(_forbidden(c) for c in self.principal) or any(_forbidden(c) for c in self.comment):
            raise UsageError("argument", "a principal or comment may not hold control or format characters")

    def in_window(self, now: datetime) -> bool:
        if self.valid_after is not None and now < self.valid_after:
            return False
        return not (self.valid_before is not None and now >= self.valid_before)

    def in_scope(self, package_id: str | None, repo: str | None) -> bool:
        if self.packages and (
            package_id is None or not any(fnmatch.fnmatchcase(package_id, g) for g in self.packages)
        ):
            return False
        return not (
            self.repos and repo is not None and not any(fnmatch.fnmatchcase(repo, g) for g in self.repos)
        )

    def options_text(self) -> str:
        options: list[str] = []
        if self.packages:
            options.append(f'packages="{",".join(self.packages)}"')
        if self.repos:
            options.append(f'repos="{",".join(self.repos)}"')
        if self.valid_after is not None:
            options.append(f"valid-after={format_time(self.valid_after)}")
        if self.valid_before is not None:
            options.append(f"valid-before={format_time(self.valid_before)}")
        return ",".join(options)

    def to_line(self) -> str:
        parts = [self.principal, self.options_text(), self.key.to_line(self.comment)]
        return " ".join(p for p in parts if p)

    @classmethod
    def parse(cls, line: str) -> TrustEntry:
        """Parse one entry line; raises ``ValueError`` with a short reason."""
        tokens = _split_tokens(line)
        if len(tokens) < 3:
            raise ValueError("an entry reads 'principal [options] ed25519 <base64 key> [comment]'")
        principal, rest = tokens[0], tokens[1:]
        options: list[tuple[str, str]] = []
        if rest[0] != ALG and "=" in rest[0]:
            options = _split_options(rest[0])
            rest = rest[1:]
        if len(rest) < 2 or rest[0] != ALG:
            raise ValueError("expected 'ed25519 <base64 key>' after the principal and options")
        try:
            key = PublicKey.from_text(rest[1])
        except UsageError as exc:
            raise ValueError(exc.message) from None
        values: dict[str, str] = {}
        for name, value in options:
            if name not in OPTION_NAMES:
                raise ValueError(f"unknown option {name!r}; known: {', '.join(OPTION_NAMES)}")
            if name in values:
                raise ValueError(f"option {name!r} given twice")
            values[name] = value
        try:
            after = parse_time(values["valid-after"]) if "valid-after" in values else None
            before = parse_time(values["valid-before"]) if "valid-before" in values else None
        except UsageError as exc:
            raise ValueError(exc.message) from None
        try:
            return cls(
                principal=principal,
                key=key,
                packages=_globs(values["packages"], "packages") if "packages" in values else (),
                repos=_globs(values["repos"], "repos") if "repos" in values else (),
                valid_after=after,
                valid_before=before,
                comment=" ".join(rest[2:]),
            )
        except UsageError as exc:
            raise ValueError(exc.message) from None


@dataclass(frozen=True)
class Revocation:
    """A revoked key: no signature by it is ever accepted."""

    key: PublicKey
    comment: str = ""

    def to_line(self) -> str:
        return f"{REVOKED_MARKER} {self.key.to_line(self.comment)}"

    @classmethod
    def parse(cls, line: str) -> Revocation:
        rest = line.strip(_WSP)[len(REVOKED_MARKER) :].strip(_WSP)
        try:
            key, comment = PublicKey.from_line(rest)
        except UsageError:
            raise ValueError("a revocation reads '@revoked ed25519 <base64 key> [comment]'") from None
        return cls(key, comment)


Line = str | TrustEntry | Revocation


@dataclass
class TrustStore:
    """The parsed trust store. ``lines`` keeps comments and order for rewriting."""

    lines: list[Line] = field(default_factory=list)
    path: Path | None = None

    # -- reading ------------------------------------------------------------------------

    @property
    def entries(self) -> list[TrustEntry]:
        return [ln for ln in self.lines if isinstance(ln, TrustEntry)]

    @property
    def revocations(self) -> list[Revocation]:
        return [ln for ln in self.lines if isinstance(ln, Revocation)]

    def entries_for(self, keyid: bytes) -> list[TrustEntry]:
        return [e for e in self.entries if e.key.keyid == keyid]

    def is_revoked(self, keyid: bytes) -> bool:
        return any(r.key.keyid == keyid for r in self.revocations)

    def key_for(self, keyid: bytes) -> PublicKey | None:
        """The key with this id among trusted and revoked keys, or None when unknown."""
        for item in self.lines:
            if isinstance(item, (TrustEntry, Revocation)) and item.key.keyid == keyid:
                return item.key
        return None

    @classmethod
    def parse(cls, text: str, source: str = "trust store", path: Path | None = None) -> TrustStore:
        lines: list[Line] = []
        for number, raw in enumerate(store_lines(text, source), start=1):
            stripped = raw.strip(_WSP)
            try:
                if not stripped or stripped.startswith("#"):
                    lines.append(raw)
                elif _WSP_RUN.split(stripped, maxsplit=1)[0] == REVOKED_MARKER:
                    lines.append(Revocation.parse(stripped))
                elif stripped.startswith("@"):
                    marker = _WSP_RUN.split(stripped, maxsplit=1)[0]
                    raise ValueError(f"unknown marker {marker[:40]!r}; only @revoked exists")
                else:
                    lines.append(TrustEntry.parse(stripped))
            except ValueError as exc:
                raise UsageError(
                    "trust-store", f"{source}: line {number}: {exc}; fix or delete that line"
                ) from None
        return cls(lines, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> TrustStore:
        """Read the store; a missing file (default or given) is an empty store."""
        target = Path(path) if path is not None else default_trust_path()
        if not os.path.lexists(target):
            return cls([], target)
        data = read_capped(target, MAX_TRUST_STORE, what="trust store", code="trust-store")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError("trust-store", f"{target} is not UTF-8 text") from None
        return cls.parse(text, str(target), target)

    @classmethod
    def coerce(cls, trust: TrustStore | str | os.PathLike[str] | None) -> TrustStore:
        return trust if isinstance(trust, TrustStore) else cls.load(trust)

    # -- changing -----------------------------------------------------------------------

    def dumps(self) -> str:
        out = [ln if isinstance(ln, str) else ln.to_line() for ln in self.lines]
        return "\n".join(out) + "\n" if out else ""

    def add(self, entry: TrustEntry) -> None:
        if self.is_revoked(entry.key.keyid):
            raise UsageError("argument", f"key {entry.key.keyid_hex} is revoked; it cannot be trusted again")
        if entry in self.entries:
            return
        self.lines.append(entry)

    def remove(self, selector: str) -> int:
        """Drop entries whose principal or key id (hex, or a unique prefix of 8+) is ``selector``."""

        def match(entry: TrustEntry) -> bool:
            kid = entry.key.keyid_hex
            return entry.principal == selector or (len(selector) >= 8 and kid.startswith(selector.lower()))

        before = len(self.lines)
        self.lines = [ln for ln in self.lines if not (isinstance(ln, TrustEntry) and match(ln))]
        return before - len(self.lines)

    def revoke(self, key: PublicKey, comment: str = "") -> None:
        """Revoke ``key``: its trust entries stay (for the record) but never count again."""
        if not self.is_revoked(key.keyid):
            self.lines.append(Revocation(key, comment))

    def apply_rotation(self, record: RotationRecord) -> int:
        """Move every entry of ``record.old`` to ``record.new`` (same principal and options)."""
        record.verify()
        if self.is_revoked(record.old.keyid) or self.is_revoked(record.new.keyid):
            raise UsageError(
                "argument", "the rotation names a revoked key; a revoked key cannot hand on trust"
            )
        moved = 0
        for index, item in enumerate(self.lines):
            if isinstance(item, TrustEntry) and item.key == record.old:
                self.lines[index] = replace(item, key=record.new)
                moved += 1
        if not moved:
            raise UsageError("not-found", f"no trust entry holds the old key {record.old.keyid_hex}")
        return moved

    def with_entries(self, entries: list[TrustEntry]) -> TrustStore:
        """A copy with extra entries (e.g. a TOFU-pinned key), the file untouched."""
        return TrustStore([*self.lines, *entries], self.path)

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        target = Path(path) if path is not None else (self.path or default_trust_path())
        make_parents(target)
        return atomic_write(target, self.dumps().encode("utf-8"))

    @classmethod
    @contextlib.contextmanager
    def edit(cls, path: str | os.PathLike[str] | None = None) -> Iterator[TrustStore]:
        """Lock, load, yield, then save atomically: concurrent editors lose nothing."""
        target = Path(path) if path is not None else default_trust_path()
        with locked(target):
            store = cls.load(target)
            yield store
            store.save(target)
