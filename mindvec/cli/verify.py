"""``mindvec verify FILE``: check structure, signatures, digests, trust and rollback.

Checks run in the spec's fixed order; the first failure decides the verdict. A
detached signature file FILE.sig (for x.mindvec: x.mindvec.sig) is picked up
automatically and its signatures are merged with the embedded ones (--no-detached
ignores it).

exit codes:
  0  verified   signed by enough trusted, in-scope, current keys; digests match
  1  invalid    malformed or invalid file, bad signature, digest mismatch, revoked,
                expired, scope, key-pin, rollback, or fewer than --threshold signatures
  2  usage      bad arguments, unreadable trust store or state file
  3  unsigned   well formed, but no signature at all
  4  untrusted  well formed and validly signed, but by no key in the trust store
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from mindvec.cli.options import add_policy_arguments, policy_from_args
from mindvec.errors import UsageError
from mindvec.policy import UNDECIDED
from mindvec.text import escape as esc
from mindvec.verification import VerifyReport, verify

EXIT_USAGE = 2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="verify a package's signatures, digests and trust (exit 0 verified, 1 invalid, "
        "3 unsigned, 4 untrusted)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", help="the .mindvec file")
    add_policy_arguments(parser, opt_ins=False)
    parser.add_argument("--no-detached", action="store_true", help="ignore FILE.sig")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        report = verify(args.file, policy_from_args(args), detached=False if args.no_detached else None)
    except UsageError as exc:
        print(f"error[{exc.code}]: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=True))
    else:
        print("\n".join(render(report)))
    if report.error is not None:
        print(f"error[{report.error.code}]: {report.error.message}", file=sys.stderr)
    return report.exit_code


def _signature_line(sig: Any) -> str:
    if sig.valid is None:
        state = "not checked: key not in the trust store"
    elif not sig.valid:
        state = "INVALID signature"
    elif sig.trusted:
        state = "valid, trusted"
    elif sig.reason == UNDECIDED:
        state = "valid; trust not evaluated (an earlier check failed)"
    else:
        state = f"valid, not trusted ({sig.reason})"
    where = " [detached]" if sig.source == "detached" else ""
    return f"  signature  {sig.keyid}  {esc(sig.principal or '(unknown)')}  {state}{where}"


def render(report: VerifyReport) -> list[str]:
    lines = [f"{esc(report.path or '(package)')}: {report.verdict.upper()}"]
    if report.package_id is not None:
        name = f' "{esc(report.package_name)}"' if report.package_name else ""
        lines.append(f"  package    {esc(report.package_id)} version {report.package_version}{name}")
    if report.identity:
        lines.append(f"  identity   {report.identity}")
    payload = {True: "all digests match", False: "DIGEST MISMATCH", None: "not checked"}[report.payload_ok]
    lines.append(f"  payload    {payload}")
    if not report.signatures:
        lines.append("  signatures none")
    lines.extend(_signature_line(sig) for sig in report.signatures)
    if report.threshold > 1:
        lines.append(f"  threshold  {report.threshold} trusted signatures required")
    if report.state_updated:
        lines.append("  state      recorded as the highest version seen")
    return lines
