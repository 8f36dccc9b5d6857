"""Adapters that speak the conformance protocol (see ../README.md)."""
