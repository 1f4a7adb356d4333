#!/bin/sh
# Runs a command under Node >= 22.13 (Hardhat 3's floor). Where the system Node is
# older, a Node 22 binary is installed once from the npm registry into .tools/ and put
# first on PATH; where it is new enough, nothing extra happens.
# Usage: sh scripts/with-node.sh <command> [args...]
set -e
root="$(cd "$(dirname "$0")/.." && pwd)"

node_ok() {
  "$1" -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=13)?0:1)' 2>/dev/null
}

if ! command -v node >/dev/null 2>&1 || ! node_ok node; then
  tools="$root/.tools/node_modules/.bin"
  if ! node_ok "$tools/node"; then
    echo "with-node: system Node $(node --version 2>/dev/null || echo none) is older than 22.13; installing node@22 into .tools/ (once)" >&2
    npm install --prefix "$root/.tools" --no-save --no-package-lock --loglevel=error node@22 >&2
    node_ok "$tools/node" || { echo "with-node: could not install Node 22 into .tools/" >&2; exit 1; }
  fi
  PATH="$tools:$PATH"
fi
PATH="$root/node_modules/.bin:$PATH"
export PATH
exec "$@"
