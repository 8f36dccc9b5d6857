"""Deliberately broken readers: test fixtures proving the runner catches each kind of bug.

Each module is the reference adapter with one check disabled, and is run as a script
exactly like it. ``TARGETS`` in each names the case-id globs it must fail.
"""
