#!/usr/bin/env bash
# Install newman (the Postman collection runner) into node_modules/, exactly as package-lock.json
# pins it. Does nothing when node_modules/ already matches the lock file; runs `npm ci` otherwise.
# Then: node_modules/.bin/newman run postman/payments-api.postman_collection.json \
#         -e postman/local.postman_environment.json [--env-var baseUrl=http://host:port]
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "install_newman: $*" >&2; exit 1; }

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "install_newman: installing Debian's nodejs and npm"
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm
  else
    die "Node.js and npm are needed. Install Node.js 16 or newer with npm (Debian/Ubuntu: sudo apt-get install nodejs npm), then run this again."
  fi
fi
node -e 'process.exit(parseInt(process.versions.node, 10) >= 16 ? 0 : 1)' ||
  die "Node.js $(node --version) is too old; newman needs 16 or newer."

# A copy of the lock file from the last successful install says whether node_modules/ is current.
STAMP=node_modules/.package-lock.installed
if [ -x node_modules/.bin/newman ] && cmp -s package-lock.json "$STAMP"; then
  exit 0
fi

echo "install_newman: installing newman with npm ci"
npm ci --no-audit --no-fund || die "npm ci failed (see above). Is the npm registry reachable?"
cp package-lock.json "$STAMP"
