"""Times in trust stores, rotation records and ``--now``: one parser, UTC, ASCII digits only."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from mindvec.errors import UsageError

_COMPACT_TIME = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})(?:([0-9]{2})([0-9]{2})([0-9]{2}))?Z?")


def parse_time(text: str) -> datetime:
    """``YYYYMMDD[HHMMSS][Z]`` or ISO 8601, as an aware UTC datetime (naive means UTC).

    Only ASCII digits count (``int`` would read Arabic-Indic ones too), and a time that does
    not exist or does not fit in UTC (9999-12-31T23:59:59-01:00) is an ``argument`` error.
    """
    bad = f"{text[:60]!r} is not a time; write YYYYMMDD[HHMMSS]Z or ISO 8601 (UTC, ASCII digits)"
    if not text.isascii():
        raise UsageError("argument", bad)
    match = _COMPACT_TIME.fullmatch(text)
    try:
        if match:
            y, mo, d, h, mi, s = (int(p) for p in match.groups(default="0"))
            return datetime(y, mo, d, h, mi, s, tzinfo=timezone.utc)
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    except (ValueError, OverflowError) as exc:
        raise UsageError("argument", bad) from exc
    if value.microsecond:  # a trust store writes whole seconds: a fraction would not survive
        raise UsageError("argument", f"{text[:60]!r} has a fraction of a second; times are whole seconds")
    return value


def format_time(value: datetime) -> str:
    """The trust store form ``YYYYMMDDHHMMSSZ`` (UTC)."""
    # by hand, not strftime: glibc writes year 27 as "27", which reads back as another time
    t = value.astimezone(timezone.utc)
    return f"{t.year:04d}{t.month:02d}{t.day:02d}{t.hour:02d}{t.minute:02d}{t.second:02d}Z"


def resolve_now(now: datetime | str | None) -> datetime:
    """``now`` as an aware UTC datetime; the system clock when None; naive means UTC."""
    if now is None:
        return datetime.now(timezone.utc)
    if isinstance(now, str):
        return parse_time(now)
    return now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now.astimezone(timezone.utc)
