"""The reference adapter: this project's implementation behind the conformance protocol.

    python conformance_tests/adapters/mindvec_ref.py decode FILE
    python conformance_tests/adapters/mindvec_ref.py verify FILE --trust T [--state S] [--now TIME]
        [--threshold N]

    python conformance_tests/adapters/mindvec_ref.py trust-check --trust T [--state S]
    python conformance_tests/adapters/mindvec_ref.py capabilities

``decode`` is ``mindvec.open`` (steps 1, 3, 4, 5) plus ``Package.check_integrity`` (step 6).
``trust-check`` parses a trust store (and a state file) and prints the effective entries;
``capabilities`` announces the operations this adapter supports (protocol 2).
``verify`` is ``mindvec.verify`` (steps 1 to 7). A rejection prints ``{"code", "message"}``
on stderr and exits 1; anything unexpected exits 3, which the runner counts as a crash.
The broken adapters in ``broken/`` reuse :func:`main` with one check disabled.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# run as a script from any folder: make the repository importable
_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from conformance_tests.tagged import tag  # noqa: E402
from mindvec.errors import MindvecError  # noqa: E402
from mindvec.policy import Policy  # noqa: E402

EXIT_REJECTED = 1
EXIT_CRASH = 3


def decode(path: str) -> dict[str, Any]:
    import mindvec

    with mindvec.open(path) as package:
        package.check_integrity()
        digests = package.manifest["payload"]["tensors"]
        tensors = {}
        for name in sorted(package.tensor_names):
            info = package.tensor_info(name)
            tensors[name] = {"dtype": info.dtype, "shape": list(info.shape), "sha256": digests[name].hex()}
        major, minor = package.version
        return {
            "format": f"{major}.{minor}",
            "identity": package.identity.hex(),
            "manifest": tag(package.manifest),
            "tensors": tensors,
            "signatures": [{"alg": s.alg, "keyid": s.keyid.hex()} for s in package.signatures],
        }


def verify(path: str, trust: str, state: str | None, now: str | None, threshold: int) -> dict[str, Any]:
    import mindvec

    report = mindvec.verify(
        path, detached=False, policy=Policy(trust=trust, threshold=threshold, state=state, now=now)
    )
    if report.error is not None:
        raise report.error
    return {
        "identity": report.identity,
        "verified": True,
        "signers": sorted(result.keyid for result in report.signatures if result.trusted),
        "report": report.to_dict(),
    }


def _time(value: Any) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def trust_check(trust: str, state: str | None) -> dict[str, Any]:
    from mindvec.state import State
    from mindvec.trust import TrustStore

    store = TrustStore.load(trust)
    report: dict[str, Any] = {
        "entries": [
            {
                "principal": e.principal,
                "keyid": e.key.keyid_hex,
                "packages": list(e.packages),
                "repos": list(e.repos),
                "valid_after": _time(e.valid_after),
                "valid_before": _time(e.valid_before),
            }
            for e in store.entries
        ],
        "revoked": [r.key.keyid_hex for r in store.revocations],
    }
    if state is not None:
        doc = State(state)._read()
        report["state"] = {
            "packages": {
                k: {"version": v["version"], "identity": v["identity"]} for k, v in doc["packages"].items()
            },
            "pins": {repo: {"keyid": item["keyid"]} for repo, item in doc["pins"].items()},
        }
        for package_id in doc["packages"]:
            State(state).seen(package_id)  # the same checks a verifier makes
        for repo in doc["pins"]:
            State(state).pin(repo)
    return report


CAPABILITIES = {"protocol": 2, "ops": ["decode", "verify", "trust-check"]}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="op", required=True)
    dec = sub.add_parser("decode")
    dec.add_argument("file")
    ver = sub.add_parser("verify")
    ver.add_argument("file")
    ver.add_argument("--trust", required=True)
    ver.add_argument("--state")
    ver.add_argument("--now")
    ver.add_argument("--threshold", type=int, default=1)
    chk = sub.add_parser("trust-check")
    chk.add_argument("--trust", required=True)
    chk.add_argument("--state")
    sub.add_parser("capabilities")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.op == "capabilities":
            result = CAPABILITIES
        elif args.op == "trust-check":
            result = trust_check(args.trust, args.state)
        elif args.op == "decode":
            result = decode(args.file)
        else:
            result = verify(args.file, args.trust, args.state, args.now, args.threshold)
    except MindvecError as exc:
        print(
            json.dumps({"code": exc.code, "class": exc.klass.value, "message": exc.message}), file=sys.stderr
        )
        return EXIT_REJECTED
    except Exception:  # noqa: BLE001 - anything else is a crash, and the runner must see it as one
        traceback.print_exc()
        return EXIT_CRASH
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
