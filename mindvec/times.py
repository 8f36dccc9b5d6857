"""Times in trust stores, rotation records and ``--now``: one parser, UTC, ASCII digits only."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from mindvec.errors import UsageError

#: the ISO 8601 forms a trust store and --now accept: a date, or a date and time to the minute or
#: second, with Z, an offset or nothing (UTC); not week dates, ordinal dates, hours alone or fractions
_ISO_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"  # date
    r"(?:T[0-9]{2}:[0-9]{2}(?::[0-9]{2})?"  # time, to the minute or the second
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})?)?"  # zone (none: UTC)
)
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
        if not _ISO_TIME.fullmatch(text):
            if "." in text or "," in text:  # a trust store writes whole seconds: a fraction would not survive
                raise UsageError(
                    "argument", f"{text[:60]!r} has a fraction of a second; times are whole seconds"
                )
            raise ValueError(text)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    except (ValueError, OverflowError) as exc:
        raise UsageError("argument", bad) from exc


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
