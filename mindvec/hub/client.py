"""Access to ``huggingface_hub``, imported only when a Hub call is made, and its errors."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from mindvec.errors import UsageError
from mindvec.text import escape


def hf_module() -> Any:
    try:
        import huggingface_hub
    except ImportError:
        raise UsageError(
            "hub", "the Hub needs huggingface_hub; install it with: pip install 'mindvec[hub]'"
        ) from None
    return huggingface_hub


def endpoint_url(endpoint: str | None) -> str | None:
    """``endpoint``, else ``$HF_ENDPOINT`` read now (huggingface_hub reads it only once, at import)."""
    return endpoint or os.environ.get("HF_ENDPOINT") or None


def hub_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a Hub call may raise (HTTP, transport, file system, malformed replies)."""
    hf = hf_module()
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
    # huggingface_hub 1.x talks through httpx, 2.x through httpx2: a transport error of either
    with contextlib.suppress(ImportError):
        import httpx2

        if isinstance(exc, httpx2.TransportError):
            return True
    with contextlib.suppress(ImportError):
        import httpx

        if isinstance(exc, httpx.TransportError):
            return True
    return False


def hub_error(action: str, exc: BaseException, endpoint: str | None) -> UsageError:
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
    return cls("hub", f"{action} at {where} failed ({type(exc).__name__}: {escape(first[:300])}); {hint}")
