"""End-to-end mindvec demo, offline on real PyPI models (README's main command).

1. Extract a sentiment vector in Gemma 3 270M (difference of means of positive and negative
   movie-review sentences from gensim's ``pang_lee_polarity.cor``), at every layer.
2. Fit a Gemma 3 -> SmolLM2-135M map, choosing the layer pair by correspondence: screen all
   pairs with linear CKA, score the best candidates by held-out ridge R², then fit ridge on
   >= 20k word-aligned token pairs of ``lee_background.cor`` for the best pair and for the
   middle layers, with the shuffled / mean / embedding baselines.
3. Translate the vector into SmolLM2 (``W v`` with a recommended scale).
4. Sign the packages with a fresh key and verify them against a trust store holding it.
5. Steer SmolLM2 with the translated vector, SmolLM2's own vector for the same concept, and
   a random vector, all at the same injected norm.

The effect measure (one number per vector and strength): over 8 fixed neutral prompts, the
mean over prompts of [mean log-probability of 8 positive words - mean log-probability of 8
negative words] as the next token, steered minus unsteered. Fractions are relative to
SmolLM2's own vector at the same injected norm.

Usage: ``python examples/demo.py [--pairs 20000] [--out DIR] [--no-cache]``. Outputs (packages,
key, trust store, heatmap) and caches (the layer screen and the paired statistics, reused by a
second run with the same models and settings) go to ``$MINDVEC_CACHE/demo`` (default
``~/.cache/mindvec/demo``), never the repository.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

POS_WORDS = ("good", "great", "wonderful", "excellent", "beautiful", "amazing", "fantastic", "brilliant")
NEG_WORDS = ("bad", "terrible", "awful", "boring", "horrible", "dull", "poor", "worst")
PROMPTS = (
    "The movie was",
    "I watched the film last night and it was",
    "The story of the book is",
    "Overall, the experience felt",
    "The weather today is",
    "My new phone is",
    "The food at the restaurant was",
    "I think this song is",
)
STRENGTHS = (1.0, 4.0, 16.0)
CACHE_VERSION = "demo-2"  # bump when the pairing or chunking changes


def say(text: str) -> None:
    print(text, flush=True)


@dataclass
class Timer:
    start: float

    def lap(self, what: str) -> None:
        say(f"  [{time.monotonic() - self.start:6.1f}s] {what}")


def polarity() -> tuple[list[str], list[str]]:
    from mindvec import assets

    return assets.polarity()


# ----------------------------------------------------------------------------- effect measure


def word_ids(tokenizer: Any, words: tuple[str, ...]) -> list[int]:
    return [tokenizer(" " + w, add_special_tokens=False)["input_ids"][0] for w in words]


def sentiment_score(model: Any, tokenizer: Any) -> float:
    """Mean over PROMPTS of mean log p(positive word) - mean log p(negative word), next token."""
    import torch

    pos, neg = word_ids(tokenizer, POS_WORDS), word_ids(tokenizer, NEG_WORDS)
    scores = []
    with torch.no_grad():
        for prompt in PROMPTS:
            ids = torch.tensor([tokenizer(prompt)["input_ids"]])
            logp = torch.log_softmax(model(input_ids=ids).logits[0, -1].float(), dim=-1)
            scores.append(float(logp[pos].mean() - logp[neg].mean()))
    return float(np.mean(scores))


def effect(model: Any, tokenizer: Any, package: Path, scale: float, base: float, policy: Any) -> float:
    import mindvec

    with mindvec.steer(model, package, scale=scale, policy=policy):
        return sentiment_score(model, tokenizer) - base


# ----------------------------------------------------------------------------- steps


def fmt(m: Any) -> str:
    return f"centered cos {m.centered_cosine:6.3f}   raw cos {m.raw_cosine:6.3f}   R2 {m.r2:6.3f}"


def choose_pairs(corr: Any) -> dict[str, tuple[int, int]]:
    """The layer pairs to fit: best held-out R2 overall, the steering pair, and the middle layers.

    The steering target is SmolLM2's middle layer (where steering works); its source is the
    correspondence's best source for it. The middle pair is the middle layer of each model.
    """
    best = corr.best()
    scored = [c for c in corr.candidates if c.r2 is not None]
    top = max(scored, key=lambda c: c.r2)
    steer_t = corr.target_layers[len(corr.target_layers) // 2]
    return {
        "best R2": (top.source_layer, top.target_layer),
        "steering": (best[steer_t].source_layer, steer_t),
        "middle": (corr.source_layers[len(corr.source_layers) // 2], steer_t),
    }


def cache_key(gemma: Any, smol: Any, args: argparse.Namespace) -> str:
    """Cache key of the screen and statistics: model files, corpus settings, sizes and seed."""
    import hashlib

    parts = [gemma.source["file_sha256"].hex(), smol.source["file_sha256"].hex(), CACHE_VERSION]
    parts += [str(args.pairs), str(args.screen_pairs), str(args.seed)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def print_fit(mf: Any, labels: list[str]) -> None:
    r = mf.report
    alpha = r.mapping.hyperparameters["relative_alpha"]
    say(
        f"     Gemma {mf.source_site.layer:2d} -> SmolLM2 {mf.target_site.layer:2d} [{', '.join(labels)}] "
        f"(train {r.train_samples}, test {r.test_samples}, alpha {alpha} x mean eigenvalue)"
    )
    say(f"       held-out           {fmt(r.held_out)}")
    for bname in ("shuffled", "mean", "embedding"):
        say(f"       {bname:9s} baseline {fmt(r.baselines[bname])}")


def single_vector_package(
    out: Path,
    name: str,
    model_ref: dict[str, Any],
    site: Any,
    vec: np.ndarray,
    calib: tuple[float, int],
    kind: str,
) -> Path:
    from mindvec.builder import PackageBuilder

    b = PackageBuilder(f"demo/{name}", description=f"demo {kind} vector", intended_effect="sentiment")
    b.add_model_entry("smollm2", model_ref)
    b.add_vector(
        name,
        "smollm2",
        [(site, vec.astype(np.float32), {"mean_norm": calib[0], "tokens": calib[1]})],
        scale=1.0,
        scale_range=(0.0, 8.0),
        method={"kind": kind},
    )
    b.set_provenance(creator="mindvec demo", license="CC-BY-4.0", seed=0)
    return b.write(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20000, help="aligned token pairs for the final fits")
    parser.add_argument("--screen-pairs", type=int, default=2500, help="pairs for the layer screen")
    parser.add_argument("--out", type=Path, help="output folder (default $MINDVEC_CACHE/demo)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-cache", action="store_true", help="recompute the cached screen and statistics")
    args = parser.parse_args(argv)

    import torch

    from mindvec import assets
    from mindvec.fit import correspondence, models
    from mindvec.fit.activations import layer_sites
    from mindvec.fit.build import MapSide, Meta, dataset_entry, mapping_package, vector_package
    from mindvec.fit.correspondence import heatmap
    from mindvec.fit.pairing import split_chunks
    from mindvec.fit.pipeline import FitState, collect_state, finish_state, screen_layers
    from mindvec.fit.vectors import extract_at_sites as extract
    from mindvec.keys import SecretKey
    from mindvec.policy import Policy
    from mindvec.translation import translate, translate_vector
    from mindvec.trust import TrustStore
    from mindvec.verification import verify

    torch.manual_seed(args.seed)
    out = args.out or assets.cache_dir() / "demo"
    out.mkdir(parents=True, exist_ok=True)
    t = Timer(time.monotonic())
    say(f"mindvec demo: outputs in {out}")

    # -------------------------------------------------------------- models and key
    gemma, smol = models.load("gemma3"), models.load("smollm2")
    t.lap("loaded Gemma 3 270M (640 x 18) and SmolLM2-135M (576 x 30)")
    key = SecretKey.generate("mindvec demo")
    trust_file = out / "allowed_signers"
    trust_file.write_text(f"demo@mindvec {key.public_key.to_line('demo key')}\n")
    trust = TrustStore.load(trust_file)
    meta = Meta(
        "demo/sentiment",
        creator="mindvec demo",
        description="sentiment (positive minus negative)",
        intended_effect="pushes text towards positive sentiment",
    )

    # -------------------------------------------------------------- 1. vector in Gemma
    pos, neg = polarity()
    g_vec = extract(gemma.model, gemma.tokenizer, pos, neg, layer_sites(gemma.model), progress=True)
    data = dataset_entry("pang_lee_polarity.cor", [*pos, "\x00", *neg], len(pos) + len(neg))
    vec_path = vector_package(
        g_vec, "gemma3", gemma.ref(), meta, vector_name="sentiment", dataset=data
    ).write(out / "sentiment-gemma3.mindvec", signers=[key])
    t.lap(f"1. extracted a sentiment vector in Gemma 3 at all 18 layers ({len(pos)}+{len(neg)} sentences)")

    # -------------------------------------------------------------- 2. correspondence and maps
    texts = split_chunks(assets.corpus("lee_background.cor"), max_chars=600)
    ckey = cache_key(gemma, smol, args)
    screen_file = out / f"screen-{ckey}.npz"
    if screen_file.exists() and not args.no_cache:
        corr = correspondence.load(screen_file)
        say(f"     (layer screen read from the cache {screen_file.name}; --no-cache recomputes)")
    else:
        corr, _ = screen_layers(
            gemma, smol, texts, samples=args.screen_pairs, cka_samples=1500, top_k=2, seed=args.seed
        )
        correspondence.save(corr, screen_file)
    heatmap(corr, out / "cka-gemma3-smollm2.png", source_name="Gemma 3", target_name="SmolLM2")
    choice = choose_pairs(corr)
    t.lap(
        f"2a. screened {len(corr.source_layers)}x{len(corr.target_layers)} layer pairs (CKA, then ridge R2)"
    )
    say("     best source per SmolLM2 layer (held-out ridge R2 of the top-2 CKA candidates, on the screen):")
    best = sorted(corr.best().items())
    say("     " + "  ".join(f"{tl}<-{c.source_layer}:{c.r2:.2f}" for tl, c in best if c.r2 is not None))
    pairs = list(dict.fromkeys(choice.values()))
    state_file = out / f"fitstate2-{ckey}-{'_'.join(f'{a}-{b}' for a, b in pairs)}.npz"
    if state_file.exists() and not args.no_cache:
        paired, _ = FitState.load(state_file)
        say(f"     (paired statistics read from the cache {state_file.name})")
    else:
        paired = collect_state(gemma, smol, texts, pairs, max_pairs=args.pairs, seed=args.seed)
        paired.save(state_file)
    fits = finish_state(paired)
    t.lap(f"2b. fitted ridge maps on {paired.n} aligned word-end pairs from {paired.texts} chunks")
    for mf in fits:
        print_fit(mf, [k for k, v in choice.items() if v == (mf.source_site.layer, mf.target_site.layer)])
    map_path = mapping_package(
        [
            (mf.name, mf.report, mf.source_site, mf.target_site, mf.target_mean_norm, mf.target_tokens)
            for mf in fits
        ],
        MapSide("gemma3", gemma.ref(), None),
        MapSide("smollm2", smol.ref(), None),
        Meta("demo/gemma3-to-smollm2", creator="mindvec demo", description="ridge maps Gemma 3 -> SmolLM2"),
        dataset=dataset_entry("lee_background.cor", texts[: paired.texts], paired.n),
        pairing="aligned",
        seed=args.seed,
        hyperparameters={"max_pairs": args.pairs, "screen_pairs": args.screen_pairs},
        correspondence=corr,
    ).write(out / "gemma3-to-smollm2.mindvec", signers=[key])
    del paired

    # -------------------------------------------------------------- 3. translate
    best_fit = fits[pairs.index(choice["steering"])]
    tr_path = translate(
        vec_path,
        map_path,
        out / "sentiment-smollm2.mindvec",
        mapping=best_fit.name,
        signers=[key],
        policy=Policy(trust=trust),
    )
    tv = translate_vector(vec_path, map_path, mapping=best_fit.name)
    t.lap(f"3. translated with map {best_fit.name}: norm ratio {tv.norm_ratio:.3f}, scale {tv.scale:.3f}")

    # -------------------------------------------------------------- 4. sign and verify
    for p in (vec_path, map_path, tr_path):
        report = verify(p, policy=Policy(trust=trust))
        say(f"     verify {p.name}: {report.verdict} (signers {report.trusted_signers})")
        if not report.ok:
            return 1
    t.lap("4. signed with a fresh Ed25519 key and verified against the trust store")

    # -------------------------------------------------------------- 5. steer
    site = best_fit.target_site
    native = extract(smol.model, smol.tokenizer, pos, neg, [site], progress=False).sites[0]
    v_tr = tv.tensor.astype(np.float64)
    rng = np.random.default_rng(args.seed)
    random_gemma = best_fit.report.mapping.apply_vector(rng.normal(size=best_fit.report.mapping.d_in))
    vectors = {
        "native": native.vector,
        "random": rng.normal(size=v_tr.shape),
        "rand-map": random_gemma,
    }
    calib = (native.mean_norm, native.tokens)
    paths = {"translated": tr_path}
    for name, vec in vectors.items():
        kind = "mean_diff" if name == "native" else "random"
        paths[name] = single_vector_package(out / f"{name}.mindvec", name, smol.ref(), site, vec, calib, kind)
    norms = {
        "translated": float(np.linalg.norm(v_tr)),
        **{k: float(np.linalg.norm(v)) for k, v in vectors.items()},
    }
    cos_native = float(v_tr @ native.vector / norms["translated"] / norms["native"])
    say(
        f"     SmolLM2 layer {site.layer}: cos(translated, native) = {cos_native:.3f}; |native| = "
        f"{norms['native']:.2f}, |W v| = {norms['translated']:.2f}, site mean norm = {native.mean_norm:.1f}"
    )
    base = sentiment_score(smol.model, smol.tokenizer)
    say(f"     unsteered score (mean logp positive - negative words) = {base:+.3f}")
    say("     effect = steered - unsteered score, all vectors injected at the same norm; fraction = / native")
    say("     injected norm     translated   native   random rand-map | transl/nat random/nat randmap/nat")
    rec_norm = tv.scale * norms["translated"]  # the injected norm at the translation's recommended scale
    for k in STRENGTHS:
        norm = k * rec_norm
        eff = {}
        for name, path in paths.items():
            policy = Policy(trust=trust) if name == "translated" else Policy(allow_unsigned=True)
            eff[name] = effect(smol.model, smol.tokenizer, path, norm / norms[name], base, policy)
        frac = [
            eff[n] / eff["native"] if eff["native"] else float("nan")
            for n in ("translated", "random", "rand-map")
        ]
        say(
            f"     {norm:7.2f} ({k:4.1f}x rec) "
            + " ".join(f"{eff[n]:+8.3f}" for n in ("translated", "native", "random", "rand-map"))
            + f" | {frac[0]:10.2f} {frac[1]:10.2f} {frac[2]:11.2f}"
        )
    t.lap("5. steered SmolLM2 (translated package via mindvec.steer with the trust store)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
