#!/usr/bin/env bash
# The whole test suite, on a fresh clone. Installs what the tests need first:
# - the official Anthropic Python SDK (pinned, from PyPI) into .cache/sdk-venv for the
#   SDK-compatibility test;
# - the panel's npm packages (pinned by ui/package-lock.json; `cargo` runs `npm ci` through
#   crates/panel/build.rs);
# - Debian's chromium for the browser tests, when running as root and it is missing.
# With KEYLOOP_REQUIRE_SERVICES=1 nothing may be skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.cache/sdk-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r crates/gateway/tests/sdk/requirements.txt
export KEYLOOP_PYTHON="$PWD/$venv/bin/python"

if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian's chromium for the panel's browser tests"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
fi

# The panel must be the real one, never the placeholder the build falls back to without npm.
export KEYLOOP_REQUIRE_PANEL=1
cargo test --workspace --locked

npm --prefix ui run --silent test:unit

# The browser tests drive the built binary, fed by its simulated upstream.
cargo build --locked -p keyloop
export KEYLOOP_BIN="$PWD/${CARGO_TARGET_DIR:-target}/debug/keyloop"
if command -v chromium >/dev/null; then
  CHROMIUM_PATH="$(command -v chromium)" npm --prefix ui run --silent test:e2e
elif [ "${KEYLOOP_REQUIRE_SERVICES:-}" = 1 ]; then
  echo "chromium is required for the panel's browser tests but is not installed" >&2
  exit 1
else
  echo "SKIPPED: the panel's browser tests (install Debian's chromium to run them)"
fi
