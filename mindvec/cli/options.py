"""The command-line form of a :class:`~mindvec.policy.Policy`, for every command that reads a package."""

from __future__ import annotations

import argparse

from mindvec.policy import Policy
from mindvec.trust import default_trust_path


def add_policy_arguments(parser: argparse.ArgumentParser, *, repo: bool = True, opt_ins: bool = True) -> None:
    """``--trust --state --threshold --now [--repo] [--allow-unsigned --allow-untrusted]``."""
    parser.add_argument("--trust", help=f"trust store (default {default_trust_path()})")
    parser.add_argument("--state", help="rollback/TOFU state file; a verified package is recorded there")
    parser.add_argument("--threshold", type=int, default=1, help="trusted signatures required (default 1)")
    parser.add_argument("--now", help="check validity windows at this UTC time (ISO 8601); default: now")
    if repo:
        parser.add_argument("--repo", help="the Hub repo the file came from (for repos= scopes and pins)")
    if opt_ins:
        parser.add_argument("--allow-unsigned", action="store_true", help="accept an unsigned package")
        parser.add_argument(
            "--allow-untrusted", action="store_true", help="accept a valid signature by an unknown key"
        )


def policy_from_args(args: argparse.Namespace) -> Policy:
    return Policy(
        trust=args.trust,
        state=args.state,
        threshold=args.threshold,
        now=args.now,
        allow_unsigned=getattr(args, "allow_unsigned", False),
        allow_untrusted=getattr(args, "allow_untrusted", False),
        repo=getattr(args, "repo", None),
    )
