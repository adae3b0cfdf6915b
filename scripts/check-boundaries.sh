#!/usr/bin/env bash
# The import rules between rooms (docs/architecture.md), checked by grep until a boundary is worth a crate:
# domain rooms use no framework or driver, wire does no I/O, edge never touches the store,
# and only the composition root (and the CLI through it) names a store backend.
set -uo pipefail
cd "$(dirname "$0")/.."
src=crates/gateway/src
failed=0
forbid() { # forbid PATTERN PATH... : fail when PATTERN appears in any PATH
  local pattern=$1; shift
  local hits
  hits=$(grep -rnE "$pattern" "$@" 2>/dev/null || true)
  if [ -n "$hits" ]; then
    echo "boundary broken ($pattern):"; echo "$hits"; failed=1
  fi
}
forbid '\b(axum|sqlx|reqwest|redis|hyper)::' "$src/pool" "$src/types.rs"
forbid '\b(tokio|axum|sqlx|reqwest|hyper)::' crates/wire/src
forbid 'crate::(store|providers|pool::KeyPool)' "$src/edge"
forbid 'crate::(edge|admin)' "$src/relay" "$src/pool" "$src/store" "$src/providers" "$src/accounting"
forbid 'crate::(edge|providers)' "$src/admin"
forbid 'connect_sqlite|sqlite::' $(ls "$src"/*.rs "$src"/*/*.rs | grep -vE "$src/(app\.rs|store/)|tests\.rs$")
forbid 'crate::app' $(ls "$src"/*/*.rs "$src"/*.rs | grep -vE "$src/(cli|demo|main|lib)\.rs")
[ "$failed" -eq 0 ] && echo "boundaries ok"
exit "$failed"
