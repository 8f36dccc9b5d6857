#!/usr/bin/env bash
# Installs the lowest versions pyproject.toml declares (core and the hub extra) into a fresh
# virtual environment, and runs the reader, writer, verifier and Hub tests against them, so
# that every floor is a tested claim. Needs the package registry (like install.sh); takes
# about a minute. The torch extra's floors are those of transformers 5.0 itself; a run with
# them needs several GB of wheels and is not part of this check.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${MINDVEC_CACHE:-$HOME/.cache/mindvec}/floors-venv"
python -m venv --clear "$venv"
py="$venv/bin/python"
"$py" -m pip install -q --disable-pip-version-check --only-binary=:all: \
  $(python scripts/lowest.py hub) pytest hypothesis
"$py" - <<'PY'
import importlib.metadata as md
for name in ("safetensors", "msgpack", "pynacl", "jsonschema", "numpy", "filelock", "huggingface-hub"):
    print(f"floor {name}=={md.version(name)}")
PY
# the source tree itself, not an installed copy: nothing pulls newer dependencies back in
PYTHONPATH="$PWD" "$py" -m pytest -q -p no:cacheprovider -m "not slow" \
  tests/test_canonical.py tests/test_container.py tests/test_payload.py tests/test_package.py \
  tests/test_manifest.py tests/test_builder.py tests/test_signing.py tests/test_trust.py \
  tests/test_policy.py tests/test_verification.py tests/test_tamper.py tests/test_cli_signing.py \
  tests/test_cli_inspect.py tests/test_hub.py tests/test_translation.py "$@"
