#!/bin/sh
# After every install: make sure Hardhat's native EDR runtime loads, then build the dashboard
# (web/ → web/dist, served by the node at /).
#
# npm under a Node older than 22 silently skips optional native packages whose engines
# need Node 22 (Hardhat's EDR runtime among them). When EDR's native binding cannot load
# under Node 22, reinstall once under Node 22 so npm picks the platform package.
set -e
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
edr_loads() {
  sh scripts/with-node.sh node -e "require('@nomicfoundation/edr')" >/dev/null 2>&1
}
if ! edr_loads; then
  if [ -n "$P2P_POSTINSTALL_RETRY" ]; then
    echo "postinstall: @nomicfoundation/edr's native package is still missing after a reinstall under Node 22" >&2
    exit 1
  fi
  echo "postinstall: npm ran under Node $(node --version); reinstalling under Node 22 to add EDR's native package" >&2
  # The reinstall runs this script again, which builds the dashboard.
  P2P_POSTINSTALL_RETRY=1 sh scripts/with-node.sh npm install --no-audit --no-fund --loglevel=error
  edr_loads
  exit 0
fi
sh scripts/with-node.sh tsx scripts/buildWeb.ts
