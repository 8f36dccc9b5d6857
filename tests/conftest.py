"""Shared test setup: no test may reach the network."""

from __future__ import annotations

import os

# Set before transformers or huggingface_hub is imported anywhere in the session.
# Tests of the Hub client run in a subprocess that starts without this variable.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
