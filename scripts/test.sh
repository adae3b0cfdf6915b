#!/usr/bin/env bash
# The whole test suite, on a fresh clone. Installs what the tests need first:
# the official Anthropic Python SDK (pinned, from PyPI) into .cache/sdk-venv for the
# SDK-compatibility test. With KEYLOOP_REQUIRE_SERVICES=1 nothing may be skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.cache/sdk-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r crates/gateway/tests/sdk/requirements.txt
export KEYLOOP_PYTHON="$PWD/$venv/bin/python"

cargo test --workspace --locked
