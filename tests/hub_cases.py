"""Hub scenarios run in a subprocess by tests/test_hub.py: ``python -m tests.hub_cases CASE TMPDIR``.

huggingface_hub reads ``HF_HUB_OFFLINE`` (which blocks loopback too) and its Xet switch once,
at import, so these scenarios run in a fresh interpreter started without ``HF_HUB_OFFLINE`` and
with ``HF_HUB_DISABLE_XET=1``. Each scenario starts the stand-in Hub (tests/hubserver.py) on
127.0.0.1, passes ``endpoint=`` to every call, and runs the real client code path: nothing in
huggingface_hub is patched. A scenario raises (exit code 1) on the first failed expectation.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from mindvec import hub, package
from mindvec.errors import MindvecError
from mindvec.keys import SecretKey
from mindvec.policy import Policy
from mindvec.state import State
from mindvec.trust import TrustEntry, TrustStore
from tests import factories
from tests.hubserver import HubStandIn

REPO = "org/steer"
FILE = "happy.mindvec"
BASE_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


class Env:
    """One scenario's world: a running stand-in, a publisher key, a trust store, a state and caches."""

    def __init__(self, tmp: Path, hub_server: HubStandIn) -> None:
        self.tmp = tmp
        self.hub = hub_server
        self.endpoint = hub_server.endpoint
        self.key = SecretKey.from_seed(hashlib.sha256(b"publisher").digest(), "publisher")
        self.pub = self.key.public_key.save(tmp / "publisher.pub", "publisher")
        self.trust_path = tmp / "allowed_signers"
        store = TrustStore([], self.trust_path)
        store.add(TrustEntry("publisher", self.key.public_key, repos=("org/*",)))
        store.save()
        self.state_path = tmp / "state.json"
        self.cache = tmp / "mindvec-cache"
        self.hf_home = Path(os.environ["HF_HOME"])

    def package(
        self, name: str = FILE, *, version: int = 1, signers: Any = None, description: str | None = None
    ) -> Path:
        manifest, tensors = factories.full_manifest()
        manifest["package"]["id"] = "org/happy"
        manifest["package"]["version"] = version
        manifest["package"]["name"] = "happy"
        if description is not None:
            manifest["package"]["description"] = description
        manifest["models"]["m"]["source"] = {"kind": "hf", "repo": BASE_MODEL, "revision": "a" * 40}
        folder = self.tmp / f"v{version}-{len(list(self.tmp.glob('v*')))}"
        folder.mkdir()
        return package.write(
            folder / name, manifest, tensors, signers=(self.key,) if signers is None else signers
        )

    def push(self, path: Path, **kwargs: Any) -> str:
        kwargs.setdefault("public_key", self.pub)
        return hub.push(path, REPO, endpoint=self.endpoint, token="hf_test", **kwargs)

    def pull(self, policy: Policy | None = None, **kwargs: Any) -> hub.PullResult:
        """A pull against the test server; the policy's trust defaults to the test store."""
        policy = policy or Policy()
        if policy.trust is None:
            policy = dataclasses.replace(policy, trust=self.trust_path)
        kwargs.setdefault("cache_dir", self.cache)
        filename = kwargs.pop("filename", FILE)
        return hub.pull_verified(REPO, filename, endpoint=self.endpoint, policy=policy, **kwargs)

    def refused(self, code: str, **kwargs: Any) -> MindvecError:
        """A pull that must fail with ``code``; then nothing trusted may be left behind."""
        try:
            result = self.pull(**kwargs)
        except MindvecError as exc:
            assert exc.code == code, f"expected {code}, got {exc.code}: {exc.message}"
            assert "quarantined at" in exc.message or "deleted" in exc.message, exc.message
            self.assert_nothing_trusted_left()
            return exc
        raise AssertionError(f"pull succeeded ({result.commit}) but {code} was expected")

    def assert_nothing_trusted_left(self) -> None:
        """No file a later pull or open would use: only verified commits in mindvec's cache, none in HF's."""
        main = self.hub.repos[REPO].branches["main"]
        leftovers = [p for p in (self.cache / "hub" / REPO / main).glob("**/*") if p.is_file()]
        assert not leftovers, f"rejected file left in mindvec's cache: {leftovers}"
        staging = self.cache / "staging"
        assert not staging.exists() or not any(staging.iterdir()), (
            f"staging not cleaned: {list(staging.iterdir())}"
        )
        quarantined = list((self.cache / "quarantine").glob("**/*"))
        assert all(not p.name.endswith(".mindvec") for p in quarantined), quarantined
        self.assert_hf_cache_empty()

    def assert_hf_cache_empty(self) -> None:
        files = [p for p in self.hf_home.glob("**/*") if p.is_file()] if self.hf_home.exists() else []
        assert not files, f"files in the shared Hugging Face cache: {files}"


def arrays_equal(a: package.Package, b: package.Package) -> None:
    assert a.identity == b.identity
    assert a.manifest == b.manifest
    assert sorted(a.tensor_names) == sorted(b.tensor_names)
    for name in a.tensor_names:
        assert np.array_equal(np.asarray(a.tensor(name)), np.asarray(b.tensor(name))), name


def flip(data: bytes, offset: int) -> bytes:
    out = bytearray(data)
    out[offset] ^= 0x01
    return bytes(out)


# ---------------------------------------------------------------------------- scenarios


def case_roundtrip(env: Env) -> None:
    """[push] package + key file + model card; [pull] resolves, pins the commit, verifies, caches."""
    src = env.package()
    url = env.push(src)
    commit = env.hub.repos[REPO].branches["main"]
    assert url.endswith(f"/{REPO}/commit/{commit}"), url
    tree = env.hub.repos[REPO].commits[commit]
    kid = env.key.keyid.hex()
    assert set(tree) == {FILE, "README.md", f"keys/{kid}.pub"}, set(tree)
    assert tree[FILE].lfs, "the package must be stored in LFS (its sha256 is the etag pull checks)"
    assert tree[FILE].data == src.read_bytes()
    card = tree["README.md"].data.decode()
    assert card.startswith("---\nlibrary_name: mindvec\n"), card[:80]
    assert f'- "{BASE_MODEL}"' in card and "base_model:" in card
    assert kid in card, "the card names the signing key id"
    assert "0.8 / 0.8 / 0.8" in card and "0.1 / 0.1 / 0.1" in card, "held-out and baseline metrics"
    assert "decoder.1.resid_post" in card and "mindvec pull org/steer happy.mindvec" in card
    assert env.hub.yaml_validated, "create_commit validated the card's YAML with the Hub"
    methods = {(m, p.split("/")[1] if p.startswith("/_lfs") else p) for m, p in env.hub.requests}
    assert ("POST", f"/{REPO}.git/info/lfs/objects/batch") in methods, "plain LFS path, not Xet"
    assert ("PUT", "_lfs") in methods

    env.hub.requests.clear()
    result = env.pull(policy=Policy(state=env.state_path))
    assert result.commit == commit and not result.from_cache
    assert result.path == env.cache / "hub" / REPO / commit / FILE, result.path
    assert result.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    assert result.report.verdict == "verified", result.report
    arrays_equal(result.package, package.open(src))
    assert env.hub.requests[0] == ("GET", f"/api/models/{REPO}"), "the revision is resolved first"
    assert ("GET", f"/{REPO}/resolve/{commit}/{FILE}") in env.hub.requests, "download pinned to the commit"
    assert (env.cache / "hub" / REPO / "refs" / "main").read_text().strip() == commit
    env.assert_hf_cache_empty()

    # a cached file is verified again on every use, and a damaged one is replaced
    again = env.pull(policy=Policy(state=env.state_path))
    assert again.from_cache and again.package.identity == result.package.identity
    os.chmod(again.path, 0o644)
    with open(again.path, "r+b") as handle:
        handle.seek(-40, os.SEEK_END)
        handle.write(b"\x00")
    fresh = env.pull(policy=Policy(state=env.state_path))
    assert not fresh.from_cache and fresh.sha256 == result.sha256
    assert list((env.cache / "quarantine").glob("**/*.rejected")), "the damaged copy went to quarantine"

    # hf:// URLs and a pinned commit reach the same file
    by_url = hub.pull(
        f"hf://{REPO}@{commit}/{FILE}",
        cache_dir=env.cache,
        endpoint=env.endpoint,
        policy=Policy(trust=env.trust_path),
    )
    assert by_url.identity == result.package.identity
    only = hub.pull(
        f"hf://{REPO}", cache_dir=env.cache, endpoint=env.endpoint, policy=Policy(trust=env.trust_path)
    )
    assert only.identity == result.package.identity, "the repo's only .mindvec file is found by itself"
    env.assert_hf_cache_empty()

    # with the Hub unreachable, a cached file (by commit, or by a branch resolved before) is used
    # only after full verification; a damaged one is quarantined, never used
    endpoint = env.endpoint
    env.hub.stop()
    for rev in (commit, None):
        offline = hub.pull_verified(
            REPO,
            FILE,
            revision=rev,
            cache_dir=env.cache,
            endpoint=endpoint,
            policy=Policy(trust=env.trust_path),
        )
        assert offline.offline and offline.from_cache and offline.commit == commit, (rev, offline)
        assert offline.package.identity == result.package.identity
    cached = env.cache / "hub" / REPO / commit / FILE
    os.chmod(cached, 0o644)
    data = cached.read_bytes()
    sig_len = int.from_bytes(data[-16:-8], "little")
    cached.write_bytes(flip(data, len(data) - 16 - sig_len - 1))
    try:
        hub.pull(REPO, FILE, cache_dir=env.cache, endpoint=endpoint, policy=Policy(trust=env.trust_path))
    except MindvecError as exc:
        assert exc.code == "digest-mismatch" and "quarantined" in exc.message, exc
    else:
        raise AssertionError("a damaged cached file was used offline")
    assert not cached.exists()
    try:
        hub.pull(REPO, FILE, cache_dir=env.cache, endpoint=endpoint, policy=Policy(trust=env.trust_path))
    except MindvecError as exc:
        assert exc.code == "hub" and "failed" in exc.message, exc
    else:
        raise AssertionError("nothing cached and no Hub: the pull must fail")


def case_transfer(env: Env) -> None:
    """Bytes that do not match the Hub's LFS etag are a transfer error."""
    env.push(env.package())
    env.hub.serve_wrong_bytes(REPO, FILE)
    exc = env.refused("transfer")
    assert "LFS sha256" in exc.message
    env.refused("transfer")  # a second pull does not pick anything up either
    env.hub.behave()
    assert env.pull().report.verdict == "verified"


def case_tampered(env: Env) -> None:
    """A tampered package served with a correct etag fails its signature or digests."""
    src = env.package()
    env.push(src)
    data = src.read_bytes()
    raw = package.open(src)
    manifest_at = data.index(raw.manifest_bytes)
    desc = raw.manifest_bytes.index(b"a test package")
    env.hub.serve_tampered(REPO, FILE, flip(data, manifest_at + desc))
    env.refused("bad-signature")
    sig_len = int.from_bytes(data[-16:-8], "little")
    env.hub.serve_tampered(REPO, FILE, flip(data, len(data) - 16 - sig_len - 1))  # last tensor byte
    env.refused("digest-mismatch")
    # trust is decided from preamble, manifest and signatures before the payload is parsed:
    # an unknown signer is refused as such, before any tensor byte is looked at
    env.refused("untrusted-key", policy=Policy(trust=env.tmp / "empty_signers"))
    env.hub.behave()
    assert env.pull().report.verdict == "verified"


def case_rollback(env: Env) -> None:
    """With a state file, an older signed version is refused as rollback."""
    old = env.package(version=1)
    new = env.package(version=2)
    env.push(new)
    assert env.pull(policy=Policy(state=env.state_path)).package.manifest["package"]["version"] == 2
    env.hub.serve_older_version(REPO, FILE, old.read_bytes())  # the Hub serves version 1 again
    exc = env.refused("rollback", policy=Policy(state=env.state_path))
    assert "version 1" in exc.message and "version 2" in exc.message, exc.message
    env.refused("rollback", policy=Policy(state=env.state_path))


def case_tofu(env: Env) -> None:
    """TOFU pins the publisher's key on first use; a changed key is refused later."""
    empty = env.tmp / "empty_signers"
    env.push(env.package(version=1))
    env.refused("untrusted-key", policy=Policy(trust=empty))  # unknown key, no TOFU: untrusted
    first = env.pull(tofu=True, policy=Policy(trust=empty, state=env.state_path))
    assert first.report.verdict == "verified"
    pinned = State(env.state_path).pin(REPO)
    assert pinned is not None and pinned.keyid == env.key.keyid

    intruder = SecretKey.from_seed(hashlib.sha256(b"intruder").digest(), "intruder")
    intruder_pub = intruder.public_key.save(env.tmp / "intruder.pub")
    env.push(env.package(version=2, signers=(intruder,)), public_key=intruder_pub)  # an account takeover
    exc = env.refused("key-pin", tofu=True, policy=Policy(trust=empty, state=env.state_path))
    assert env.key.keyid.hex() in exc.message, exc.message
    # the same through the stand-in's switch: package and published key file both replaced
    third = env.package(version=3, signers=(intruder,))
    key_file = {f"keys/{intruder.keyid.hex()}.pub": intruder_pub.read_bytes()}
    env.hub.change_publisher_key(REPO, FILE, third.read_bytes(), key_file)
    exc = env.refused("key-pin", tofu=True, policy=Policy(trust=empty, state=env.state_path))
    assert env.key.keyid.hex() in exc.message, exc.message
    pinned_after = State(env.state_path).pin(REPO)
    assert pinned_after is not None and pinned_after.keyid == env.key.keyid, "the pin did not move"


def case_unsigned(env: Env) -> None:
    """An unsigned package is refused by push and pull unless the caller opts in."""
    src = env.package(signers=())
    try:
        env.push(src, public_key=None)
    except MindvecError as exc:
        assert exc.code == "no-signature", exc
        assert "allow_unsigned" in exc.message
    else:
        raise AssertionError("pushing an unsigned package must be refused by default")
    assert (
        REPO not in env.hub.repos or FILE not in env.hub.repos[REPO].commits[env.hub.repos[REPO].history[-1]]
    )
    env.push(src, public_key=None, allow_unsigned=True)
    card = env.hub.file_at(REPO, "README.md").decode()
    assert "**unsigned**" in card and "--allow-unsigned" in card
    env.refused("no-signature")
    result = env.pull(policy=Policy(allow_unsigned=True))
    assert result.report.verdict == "unsigned" and result.report.allowed
    arrays_equal(result.package, package.open(src))


def case_cli(env: Env) -> None:
    """``mindvec push`` and ``mindvec pull`` end to end, exit codes and one-line errors."""
    import contextlib
    import io

    from mindvec.cli import main

    src = env.package()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(
            [
                "push",
                str(src),
                REPO,
                "--endpoint",
                env.endpoint,
                "--token",
                "hf_test",
                "--public-key",
                str(env.pub),
            ]
        )
    assert rc == 0 and "/commit/" in out.getvalue(), (rc, out.getvalue())
    common = ["--endpoint", env.endpoint, "--trust", str(env.trust_path), "--cache-dir", str(env.cache)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["pull", REPO, FILE, *common, "--state", str(env.state_path)])
    assert rc == 0, rc
    text = out.getvalue()
    commit = env.hub.repos[REPO].branches["main"]
    assert commit in text and env.key.keyid.hex() in text and str(env.cache) in text, text
    env.hub.serve_wrong_bytes(REPO, FILE)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["pull", f"hf://{REPO}/{FILE}", *common[:-1], str(env.tmp / "other-cache")])
    assert rc != 0 and err.getvalue().startswith("error[transfer]: "), (rc, err.getvalue())
    assert len(err.getvalue().strip().splitlines()) == 1, err.getvalue()


def case_steer(env: Env) -> None:
    """``mindvec.steer(model, "hf://...")`` pulls through the same verified path."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    import mindvec
    from mindvec.loader import binding

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=32,
    )
    model = LlamaForCausalLM(config)
    model.eval()  # type: ignore[no-untyped-call]
    manifest = factories.minimal_manifest(
        m=binding.model_ref(model, source={"kind": "local", "note": "tiny random llama"})
    )
    manifest["package"]["id"] = "org/tiny"
    manifest["vectors"] = [factories.vector_entry(layers=(1,))]
    vec = np.zeros(16, dtype=np.float32)
    vec[3] = 1.0
    path = package.write(env.tmp / FILE, manifest, {"v.1": vec}, signers=(env.key,))
    env.push(path)

    ids = torch.tensor([[1, 2, 3, 4]])
    captured: list[torch.Tensor] = []

    def capture(module: Any, args: Any, output: Any) -> None:
        captured.append((output[0] if isinstance(output, tuple) else output).detach().clone())

    # steer() calls hub.pull with its defaults: the endpoint comes from $HF_ENDPOINT (read by
    # mindvec at call time) and the cache from $MINDVEC_CACHE
    os.environ["HF_ENDPOINT"] = env.endpoint
    os.environ["MINDVEC_CACHE"] = str(env.cache)
    hook = model.model.layers[1].register_forward_hook(capture)
    with torch.no_grad():
        model(ids)
        base = captured.pop()
        handle = mindvec.steer(model, f"hf://{REPO}/{FILE}", scale=2.0, policy=Policy(trust=env.trust_path))
        try:
            model(ids)
            steered = captured.pop()
        finally:
            handle.remove()
        model(ids)
        after = captured.pop()
    hook.remove()
    delta = (steered - base)[0]
    assert torch.allclose(delta[:, 3], torch.full((4,), 2.0), atol=1e-4), delta
    assert torch.allclose(delta[:, :3], torch.zeros(4, 3), atol=1e-4), delta
    assert torch.equal(after, base), "removing the handle restores the model"
    assert list((env.cache / "hub" / REPO).glob(f"*/{FILE}")), "steer pulled through mindvec's cache"
    env.assert_hf_cache_empty()

    # a tampered file on the Hub never reaches the model
    data = path.read_bytes()
    sig_len = int.from_bytes(data[-16:-8], "little")
    env.hub.commit_files(REPO, {FILE: flip(data, len(data) - 16 - sig_len - 1)})
    try:
        mindvec.steer(model, f"hf://{REPO}/{FILE}", scale=2.0, policy=Policy(trust=env.trust_path))
    except MindvecError as exc:
        assert exc.code == "digest-mismatch", exc
    else:
        raise AssertionError("steer accepted a tampered package from the Hub")
    env.assert_nothing_trusted_left()


CASES: dict[str, Callable[[Env], None]] = {
    name[len("case_") :]: fn for name, fn in globals().items() if name.startswith("case_") and callable(fn)
}


@contextmanager
def _env(tmp: Path) -> Iterator[Env]:
    with HubStandIn(token="hf_test") as server:
        yield Env(tmp, server)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in CASES:
        print(f"usage: python -m tests.hub_cases {{{','.join(CASES)}}} TMPDIR", file=sys.stderr)
        return 2
    assert "HF_HUB_OFFLINE" not in os.environ, "run without HF_HUB_OFFLINE (it blocks loopback too)"
    tmp = Path(argv[1])
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        with _env(tmp) as env:
            CASES[argv[0]](env)
    except Exception:  # noqa: BLE001 - report any failure to the parent test with its traceback
        traceback.print_exc()
        return 1
    print(f"case {argv[0]}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
