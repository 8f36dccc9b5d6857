"""The benchmark's concept files keep the promises bench_transfer.py's numbers rest on.

The evaluation words are held out (no extraction sentence contains one), and the layer-choice
probes mindvec ships (``mindvec/fit/probes.json``, which the bench chooses its layer pair by)
share no concept, sentence or word with the evaluated concepts, so that the choice is not
tuned to what the benchmark then measures.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
FILES = {
    "concepts.json": ROOT / "benchmarks" / "data" / "concepts.json",
    "probes.json": ROOT / "mindvec" / "fit" / "probes.json",
}


def _concepts(name: str) -> dict[str, Any]:
    concepts: dict[str, Any] = json.loads(FILES[name].read_text(encoding="utf-8"))["concepts"]
    return concepts


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


@pytest.mark.parametrize("name", ["concepts.json", "probes.json"])
def test_sentences_are_paired_and_words_held_out(name: str) -> None:
    for concept, c in _concepts(name).items():
        assert len(c["positive"]) == len(c["negative"]) >= 12, concept
        assert len(c["words"]) >= 3, concept
        seen = set().union(*(_words(s) for s in c["positive"] + c["negative"]))
        for word in c["words"]:
            assert word.startswith(" ") and word.strip().isalpha(), (concept, word)
            assert word.strip().lower() not in seen, (concept, word)


def test_probes_share_nothing_with_the_evaluated_concepts() -> None:
    evaluated, probes = _concepts("concepts.json"), _concepts("probes.json")
    assert not set(evaluated) & set(probes)
    eval_words = {w.strip().lower() for c in evaluated.values() for w in c["words"]}
    probe_words = {w.strip().lower() for c in probes.values() for w in c["words"]}
    assert not eval_words & probe_words
    eval_sentences = {s for c in evaluated.values() for s in c["positive"] + c["negative"]}
    probe_sentences = {s for c in probes.values() for s in c["positive"] + c["negative"]}
    assert not eval_sentences & probe_sentences
    probe_text = set().union(*(_words(s) for c in probes.values() for s in c["positive"]))
    assert not eval_words & probe_text, eval_words & probe_text
