#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` from the source vendored in the llama-cpp-python sdist,
# for the `llamacpp`-marked interop test (llama.cpp's own loader of --control-vector files).
# The binary is cached; a second run takes no time. On 2 cores the first build takes minutes.
set -euo pipefail
version="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
root="${MINDVEC_CACHE:-$HOME/.cache/mindvec}/llamacpp-$version"
server="$root/build/bin/llama-server"
if [ -x "$server" ]; then echo "$server"; exit 0; fi
mkdir -p "$root"
if [ ! -d "$root/src" ]; then
  python -m pip download -q --no-deps --no-binary=:all: -d "$root/sdist" "llama-cpp-python==$version"
  mkdir -p "$root/src.tmp"
  tar -xzf "$root"/sdist/llama_cpp_python-*.tar.gz -C "$root/src.tmp" --strip-components=1
  mv "$root/src.tmp" "$root/src"
fi
start=$(date +%s)
cmake -S "$root/src/vendor/llama.cpp" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON \
  -DLLAMA_BUILD_TOOLS=ON -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=OFF >"$root/cmake.log"
cmake --build "$root/build" --target llama-server -j "${CMAKE_BUILD_PARALLEL_LEVEL:-2}" >"$root/build.log"
echo "built llama-server in $(( $(date +%s) - start )) s" >&2
echo "$server"
