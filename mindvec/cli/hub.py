"""``mindvec push`` and ``mindvec pull``: publish on and fetch from the Hugging Face Hub."""

from __future__ import annotations

import argparse
import json
from typing import Any

from mindvec.cli.options import add_policy_arguments, policy_from_args
from mindvec.text import escape as esc


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--revision", help="branch, tag or commit (default: main)")
    parser.add_argument("--endpoint", help="Hub URL (default: $HF_ENDPOINT or https://huggingface.co)")
    parser.add_argument("--token", help="Hub token (default: $HF_TOKEN or the saved login)")


def register(subparsers: Any) -> None:
    push = subparsers.add_parser(
        "push",
        help="publish a package, its signers' public keys and a model card on the Hub",
        description="Upload FILE to REPO in one commit with keys/<keyid>.pub and a README.md model card "
        "rendered from the signed manifest. An unsigned package is refused unless --allow-unsigned.",
    )
    push.add_argument("file", help="the .mindvec package")
    push.add_argument("repo", help="namespace/name of the model repo")
    push.add_argument("--as", dest="name", help="file name in the repo (default: the file's own name)")
    push.add_argument(
        "--public-key",
        action="append",
        default=None,
        metavar="PUB",
        help="public key file of a signer (repeatable; default: looked up in the trust store)",
    )
    push.add_argument("--allow-unsigned", action="store_true", help="publish an unsigned package")
    push.add_argument("--no-create", action="store_true", help="fail if the repo does not exist")
    push.add_argument("--private", action="store_true", help="create the repo as private")
    _common(push)
    push.set_defaults(func=_push)

    pull = subparsers.add_parser(
        "pull",
        help="download a package from the Hub and verify it before use",
        description="Resolve the revision to a commit, download pinned to it, check the LFS sha256, then "
        "verify signature, trust, scope and rollback. Only a verified file enters mindvec's cache; "
        "a rejected one is quarantined.",
    )
    pull.add_argument("repo", help="namespace/name, or hf://org/repo[@rev]/file.mindvec")
    pull.add_argument("file", nargs="?", help="the .mindvec file in the repo (default: the only one)")
    add_policy_arguments(pull, repo=False)
    pull.add_argument(
        "--tofu", action="store_true", help="pin the publisher's key for this repo on first use"
    )
    pull.add_argument("--cache-dir", help="mindvec's cache (default: $MINDVEC_CACHE or ~/.cache/mindvec)")
    pull.add_argument("--json", action="store_true", help="print the result as JSON")
    _common(pull)
    pull.set_defaults(func=_pull)


def _push(args: argparse.Namespace) -> int:
    from mindvec import hub

    url = hub.push(
        args.file,
        args.repo,
        filename=args.name,
        revision=args.revision,
        token=args.token,
        endpoint=args.endpoint,
        allow_unsigned=args.allow_unsigned,
        public_key=args.public_key,
        create=not args.no_create,
        private=True if args.private else None,
    )
    print(f"published {esc(args.file)} to {args.repo}")
    print(f"commit {url}")
    return 0


def _pull(args: argparse.Namespace) -> int:
    from mindvec import hub
    from mindvec.errors import UsageError

    repo, filename, revision = args.repo, args.file, args.revision
    if hub.is_hf_url(repo):
        url = hub.parse_hf_url(repo)
        if (filename and url.filename) or (revision and url.revision):
            raise UsageError("argument", "give the file and revision either in the hf:// URL or as arguments")
        repo, filename, revision = url.repo_id, filename or url.filename, revision or url.revision
    result = hub.pull_verified(
        repo,
        filename,
        revision=revision,
        policy=policy_from_args(args),
        tofu=args.tofu,
        endpoint=args.endpoint,
        token=args.token,
        cache_dir=args.cache_dir,
    )
    report = result.report
    signers = [
        f"{esc(s.principal or '?')} ({s.keyid})" if s.trusted else f"{s.keyid} ({s.reason})"
        for s in report.signatures
    ]
    if args.json:
        doc = {
            "repo": result.repo_id,
            "file": result.filename,
            "revision": result.revision,
            "commit": result.commit,
            "sha256": result.sha256,
            "path": str(result.path),
            "from_cache": result.from_cache,
            "verification": report.to_dict(),
        }
        print(json.dumps(doc, indent=1, sort_keys=True))
        return 0
    print(f"pulled   {result.repo_id}/{result.filename} at commit {result.commit}")
    print(f"sha256   {result.sha256} (matches the Hub's LFS etag)")
    print(f"verdict  {report.verdict}" + (" (allowed by opt-in)" if report.allowed else ""))
    print(f"signers  {', '.join(signers) or 'none'}")
    print(f"identity {result.package.identity.hex()}")
    print(
        f"path     {esc(str(result.path))}" + ("  (cached copy, verified again)" if result.from_cache else "")
    )
    return 0
