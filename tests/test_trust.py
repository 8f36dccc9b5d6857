"""Trust store format, revocation, rotation, and the locked rollback/TOFU state file."""

from __future__ import annotations

import multiprocessing
from datetime import datetime, timezone
from pathlib import Path

import pytest

from mindvec.errors import UnverifiedError, UsageError
from mindvec.keys import SecretKey
from mindvec.rotation import RotationRecord
from mindvec.state import State, default_state_path
from mindvec.times import parse_time
from mindvec.trust import Revocation, TrustEntry, TrustStore, default_trust_path

UTC = timezone.utc


def _key() -> SecretKey:
    return SecretKey.generate()


@pytest.mark.req("R-77")
def test_parse_full_store() -> None:
    """The allowed_signers-like grammar of spec 11.2 round-trips, comments kept. [R-77]"""
    a, b, c = _key().public_key, _key().public_key, _key().public_key
    text = (
        "# team keys\n"
        f"alice ed25519 {a.base64} alice@laptop\n"
        "\n"
        f'bob packages="acme/*,demo.x",repos="acme/*",valid-after=20260101Z,valid-before=20270101120000Z '
        f"ed25519 {b.base64}\n"
        f"@revoked ed25519 {c.base64} lost laptop\n"
    )
    store = TrustStore.parse(text)
    assert [e.principal for e in store.entries] == ["alice", "bob"]
    alice, bob = store.entries
    assert alice.comment == "alice@laptop" and alice.packages == () and alice.valid_before is None
    assert bob.packages == ("acme/*", "demo.x") and bob.repos == ("acme/*",)
    assert bob.valid_after == datetime(2026, 1, 1, tzinfo=UTC)
    assert bob.valid_before == datetime(2027, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert store.revocations == [Revocation(c, "lost laptop")]
    assert store.is_revoked(c.keyid) and not store.is_revoked(a.keyid)
    assert store.key_for(c.keyid) == c and store.key_for(b.keyid) == b and store.key_for(b"\0" * 16) is None
    assert store.entries_for(b.keyid) == [bob]
    # round trip keeps comments and order
    again = TrustStore.parse(store.dumps())
    assert again.lines == store.lines
    assert store.dumps().startswith("# team keys\n")


def test_scope_and_window() -> None:
    key = _key().public_key
    entry = TrustEntry(
        "ci",
        key,
        packages=("acme/*",),
        repos=("acme/*",),
        valid_after=datetime(2026, 1, 1, tzinfo=UTC),
        valid_before=datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert entry.in_scope("acme/steer", None)
    assert entry.in_scope("acme/steer", "acme/repo")
    assert not entry.in_scope("evil/steer", None)
    assert not entry.in_scope("acme/steer", "evil/repo")
    assert entry.in_window(datetime(2026, 6, 1, tzinfo=UTC))
    assert entry.in_window(datetime(2026, 1, 1, tzinfo=UTC))  # valid-after is inclusive
    assert not entry.in_window(datetime(2027, 1, 1, tzinfo=UTC))  # valid-before is exclusive
    assert not entry.in_window(datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC))
    assert TrustEntry.parse(entry.to_line()) == entry


@pytest.mark.req("R-77")
@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("alice ed25519", "entry reads"),
        ("alice ssh-rsa AAAA", "expected 'ed25519"),
        ("alice ed25519 notbase64!!", "base64"),
        ("alice color=red ed25519 {k}", "unknown option"),
        ('alice packages="a",packages="b" ed25519 {k}', "twice"),
        ("alice valid-after=2026 ed25519 {k}", "not a time"),
        ('alice packages="a ed25519 {k}', "not closed"),
        ("@trusted ed25519 {k}", "unknown marker"),
        ("@revoked ed25519", "revocation reads"),
        ('"alice" ed25519 {k}', "principal"),
    ],
)
def test_malformed_lines_name_the_line(line: str, reason: str) -> None:
    """A store off the grammar is rejected whole as trust-store, naming the line. [R-77]"""
    key = _key().public_key
    text = "# ok\n" + line.format(k=key.base64) + "\n"
    with pytest.raises(UsageError) as info:
        TrustStore.parse(text, "store.txt")
    assert info.value.code == "trust-store"
    assert "line 2" in info.value.message and reason in info.value.message


def test_default_paths_follow_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "st"))
    assert default_trust_path() == tmp_path / "cfg" / "mindvec" / "allowed_signers"
    assert default_state_path() == tmp_path / "st" / "mindvec" / "state.json"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_trust_path() == tmp_path / ".config" / "mindvec" / "allowed_signers"
    # a missing default store is an empty store
    assert TrustStore.load().entries == []


def test_edit_add_remove_revoke(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "allowed_signers"
    a, b = _key().public_key, _key().public_key
    with TrustStore.edit(path) as store:
        store.add(TrustEntry("alice", a))
        store.add(TrustEntry("alice", a))  # idempotent
        store.add(TrustEntry("bob", b, packages=("x",)))
    store = TrustStore.load(path)
    assert [e.principal for e in store.entries] == ["alice", "bob"]
    with TrustStore.edit(path) as store:
        assert store.remove("bob") == 1
        store.revoke(a, "compromised")
        store.revoke(a)
    store = TrustStore.load(path)
    assert len(store.revocations) == 1 and store.is_revoked(a.keyid)
    with pytest.raises(UsageError, match="revoked"):
        store.add(TrustEntry("alice2", a))
    with TrustStore.edit(path) as store:
        assert store.remove(a.keyid_hex[:8]) == 1
        assert store.remove("nobody") == 0


@pytest.mark.req("R-79")
def test_rotation_moves_trust_entry(tmp_path: Path) -> None:
    """A rotation applies only when both signatures verify; revoked keys cannot rotate. [R-79]"""
    old, new = _key(), _key()
    store = TrustStore([TrustEntry("alice", old.public_key, packages=("acme/*",))])
    record = RotationRecord.create(old, new)
    assert store.apply_rotation(record) == 1
    assert store.entries == [TrustEntry("alice", new.public_key, packages=("acme/*",))]
    with pytest.raises(UsageError) as info:
        store.apply_rotation(record)
    assert info.value.code == "not-found"
    revoked = TrustStore([TrustEntry("alice", old.public_key), Revocation(old.public_key)])
    with pytest.raises(UsageError, match="revoked"):
        revoked.apply_rotation(record)
    forged = RotationRecord(record.body, record.old_sig, _key().sign(record.message))
    with pytest.raises(UnverifiedError):
        TrustStore([TrustEntry("alice", old.public_key)]).apply_rotation(forged)


def test_parse_time_forms() -> None:
    assert parse_time("20260102") == datetime(2026, 1, 2, tzinfo=UTC)
    assert parse_time("20260102030405Z") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_time("2026-01-02T03:04:05Z") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_time("2026-01-02T05:04:05+02:00") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with pytest.raises(UsageError):
        parse_time("yesterday")


# -- state -----------------------------------------------------------------------------------


@pytest.mark.req("R-75")
def test_state_rollback(tmp_path: Path) -> None:
    """Lower version, or same version with another identity, is rollback. [R-75]"""
    state = State(tmp_path / "state.json")
    id3, id3b = b"\x03" * 32, b"\x33" * 32
    state.record("acme/x", 3, id3)
    state.record("acme/x", 3, id3)  # same version, same identity: fine
    with pytest.raises(UnverifiedError) as info:
        state.record("acme/x", 2, b"\x02" * 32)
    assert info.value.code == "rollback"
    with pytest.raises(UnverifiedError) as info:
        state.check("acme/x", 3, id3b)
    assert info.value.code == "rollback"
    state.record("acme/other", 1, b"\x01" * 32)
    state.record("acme/x", 4, b"\x04" * 32)
    seen = State(state.path).seen("acme/x")
    assert seen is not None and seen.version == 4


def test_state_pins_and_rotation(tmp_path: Path) -> None:
    state = State(tmp_path / "state.json")
    old, new = _key(), _key()
    assert state.pin("acme/repo") is None
    state.set_pin("acme/repo", old.public_key)
    state.set_pin("acme/repo", old.public_key)
    with pytest.raises(UnverifiedError) as info:
        state.set_pin("acme/repo", new.public_key)
    assert info.value.code == "key-pin"
    assert state.apply_rotation(RotationRecord.create(old, new)) == 1
    assert state.pin("acme/repo") == new.public_key


def test_damaged_state_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{not json")
    with pytest.raises(UsageError) as info:
        State(path).seen("x")
    assert info.value.code == "trust-store"
    path.write_text(
        '{"type": "mindvec-state", "version": 1, "packages": {"x": {"version": "1"}}, "pins": {}}'
    )
    with pytest.raises(UsageError):
        State(path).seen("x")


def _record_many(args: tuple[str, int]) -> None:
    path, worker = args
    state = State(path)
    for i in range(10):
        state.record(f"pkg/{worker}-{i}", i + 1, bytes([worker]) * 32)
    with TrustStore.edit(Path(path).with_name("allowed_signers")) as store:
        store.add(TrustEntry(f"worker{worker}", SecretKey.generate().public_key))


@pytest.mark.req("R-78")
def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    """Four processes write the state file and the trust store at once; nothing is lost. [R-78]"""
    path = str(tmp_path / "state.json")
    ctx = multiprocessing.get_context("spawn" if multiprocessing.get_start_method() != "fork" else "fork")
    with ctx.Pool(4) as pool:
        pool.map(_record_many, [(path, w) for w in range(4)])
    state = State(path)
    for worker in range(4):
        for i in range(10):
            seen = state.seen(f"pkg/{worker}-{i}")
            assert seen is not None and seen.version == i + 1
    store = TrustStore.load(tmp_path / "allowed_signers")
    assert sorted(e.principal for e in store.entries) == [f"worker{w}" for w in range(4)]


def test_rewrites_keep_file_mode(tmp_path: Path) -> None:
    path = tmp_path / "allowed_signers"
    TrustStore().save(path)
    path.chmod(0o600)
    with TrustStore.edit(path) as store:
        store.add(TrustEntry("dave", _key().public_key))
    assert path.stat().st_mode & 0o777 == 0o600


# ---------------------------------------------------------------- hardening (issue 13, findings 4-7)

HIDDEN_BREAKS = ["\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
HIDDEN_SPACES = ["\xa0", "\u3000", "\u2007", "\u202e", "\x00"]


@pytest.mark.req("R-77")
@pytest.mark.parametrize("char", HIDDEN_BREAKS)
def test_a_hidden_line_break_in_a_comment_trusts_nobody(char: str) -> None:
    """Finding 4: '# see the wiki<U+0085>mallory ed25519 KEY' is one comment line to the grammar
    and to grep; before, splitlines() made it trust mallory. Now the store is refused."""
    mallory = _key()
    text = f"# see the wiki{char}mallory ed25519 {mallory.public_key.base64}\n"
    with pytest.raises(UsageError) as err:
        TrustStore.parse(text, "s")
    assert err.value.code == "trust-store" and "line 1" in err.value.message


@pytest.mark.req("R-77")
def test_a_hidden_revocation_is_refused_not_skipped() -> None:
    """Finding 4: an @revoked line hidden behind U+2028 must not silently vanish (or appear)."""
    key = _key()
    text = f"alice ed25519 {key.public_key.base64}\n# note\u2028@revoked ed25519 {key.public_key.base64}\n"
    with pytest.raises(UsageError) as err:
        TrustStore.parse(text, "s")
    assert "line 2" in err.value.message


@pytest.mark.req("R-77")
@pytest.mark.parametrize("char", HIDDEN_SPACES)
def test_only_space_and_tab_separate_tokens(char: str) -> None:
    """Finding 4: NBSP, U+3000 and other non-ASCII spaces are not separators; they are refused."""
    key = _key()
    with pytest.raises(UsageError):
        TrustStore.parse(f"alice{char}ed25519 {key.public_key.base64}\n", "s")
    tabbed = TrustStore.parse(f"alice\ted25519\t{key.public_key.base64}\tlaptop\n", "s")
    assert [(e.principal, e.comment) for e in tabbed.entries] == [("alice", "laptop")]


@pytest.mark.req("R-77")
def test_crlf_line_endings_are_read_as_lf() -> None:
    """Finding 4: the spec decides CRLF: a CR right before LF ends the line with it; a lone CR is refused."""
    a, b = _key(), _key()
    crlf = f"# team\r\nalice ed25519 {a.public_key.base64}\r\nbob ed25519 {b.public_key.base64}\r\n"
    store = TrustStore.parse(crlf, "s")
    assert [e.principal for e in store.entries] == ["alice", "bob"]
    assert TrustStore.parse(crlf.replace("\r\n", "\n"), "s").entries == store.entries
    with pytest.raises(UsageError):
        TrustStore.parse(f"alice ed25519 {a.public_key.base64}\rbob ed25519 {b.public_key.base64}\n", "s")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-01-02", datetime(2026, 1, 2, tzinfo=UTC)),
        ("2026-01-02T03:04", datetime(2026, 1, 2, 3, 4, tzinfo=UTC)),
        ("2026-01-02T03:04:05", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T03:04:05-01:30", datetime(2026, 1, 2, 4, 34, 5, tzinfo=UTC)),
        ("2026-01-02T03", None),
        ("2026-W01-1", None),
        ("2026-002", None),
        ("20260102T030405", None),
        ("2026-01-02T03:04:05z", None),
        ("2026-01-02T03:04:05.25Z", None),
    ],
)
def test_iso_times_are_the_forms_the_grammar_names(text: str, expected: datetime | None) -> None:
    """Spec 11.2's iso rule: a date, or a date and time to the minute or second, with Z or an offset."""
    if expected is not None:
        assert parse_time(text) == expected
        return
    with pytest.raises(UsageError) as err:
        parse_time(text)
    assert err.value.code == "argument"


def test_times_take_ascii_digits_only() -> None:
    """Finding 4: `\\d` matched Arabic-Indic digits; now only ASCII 0-9 is a digit."""
    assert parse_time("20260101Z") == datetime(2026, 1, 1, tzinfo=timezone.utc)
    for text in ("٢٠٢٦٠١٠١Z", "２０２６０１０１", "2026-01-0١"):
        with pytest.raises(UsageError) as err:
            parse_time(text)
        assert err.value.code == "argument"


@pytest.mark.parametrize("principal", ["alice\n", "alice\r", "a\u2028", "pack=ages", "x" * 257])
def test_principal_is_validated_on_the_whole_string(principal: str) -> None:
    """Finding 5: `$` matched before a final newline, so 'alice\\n' passed and the store that
    `trust add` wrote was refused at line 1 ever after. fullmatch now refuses it up front."""
    with pytest.raises(UsageError) as err:
        TrustEntry(principal, _key().public_key)
    assert err.value.code == "argument"


@pytest.mark.req("R-77")
def test_an_options_token_is_not_a_principal() -> None:
    """Finding 6: 'packages=acme/* ed25519 KEY' was principal 'packages=acme/*' with no scope,
    so the key could sign anything. A principal cannot contain '='; the line is refused."""
    key = _key()
    with pytest.raises(UsageError) as err:
        TrustStore.parse(f'packages="acme/*" ed25519 {key.public_key.base64}\n', "s")
    assert err.value.code == "trust-store" and "line 1" in err.value.message
    ok = TrustStore.parse(f'alice packages="acme/*" ed25519 {key.public_key.base64}\n', "s")
    assert ok.entries[0].packages == ("acme/*",)


@pytest.mark.parametrize(
    "text", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "20260230", "99999999999999Z"]
)
def test_times_that_do_not_exist_or_overflow_are_typed_errors(text: str) -> None:
    """Finding 7: valid-before=9999-12-31T23:59:59-01:00 raised OverflowError; now `argument`,
    and inside a store `trust-store` naming the line."""
    with pytest.raises(UsageError) as err:
        parse_time(text)
    assert err.value.code == "argument"
    with pytest.raises(UsageError) as err:
        TrustStore.parse(f"alice valid-before={text} ed25519 {_key().public_key.base64}\n", "s")
    assert err.value.code == "trust-store" and "line 1" in err.value.message


@pytest.mark.parametrize(
    "time", ["00270101101101101000000Z", "0027-01-01T01:10:11Z", "00010101Z", "20270101101101101000000Z"]
)
def test_a_store_survives_writing_and_reading_back(time: str) -> None:
    """Found by the fuzz campaign (fuzz/campaign.py trust): year 27 was written "270101..."
    (strftime does not zero-pad) and fractions of a second were dropped, so a store read back
    after `trust add` held other times. Years keep four digits; fractions are refused."""
    key = _key()
    line = f"alice valid-before={time} ed25519 {key.public_key.base64}\n"
    try:
        store = TrustStore.parse(line, "s")
    except UsageError as err:
        # refused as a fraction, or (ISO forms are pinned since) as not a time at all
        assert err.code == "trust-store" and ("fraction" in err.message or "not a time" in err.message)
        return
    again = TrustStore.parse(store.dumps(), "s")
    assert [e.valid_before for e in again.entries] == [e.valid_before for e in store.entries]
    assert again.dumps() == store.dumps()
