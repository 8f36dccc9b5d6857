"""Shared test setup: no test may reach the network."""

from __future__ import annotations

import os
from typing import Any

# Set before transformers or huggingface_hub is imported anywhere in the session.
# Tests of the Hub client run in a subprocess that starts without this variable.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """``llamacpp`` tests build and run llama.cpp (minutes on 2 cores): they run only when the
    ``-m`` expression names them (``-m llamacpp``), and are reported as deselected otherwise."""
    if "llamacpp" in (config.getoption("markexpr") or ""):
        return
    keep = [item for item in items if item.get_closest_marker("llamacpp") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
        items[:] = keep
