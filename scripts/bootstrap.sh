#!/bin/sh
# Installs the project's dependencies so that everything runs on Node >= 22.13
# (Hardhat 3's floor), even on a machine whose own Node is older.
#
# Pass 1 runs `npm ci` with whatever Node is on PATH; that installs the `node`
# devDependency (Node 24) at node_modules/.bin/node, which every npm script
# then uses. npm under an old Node silently skips optional native packages
# whose engines need a newer one (Hardhat's EDR), so pass 2 re-runs npm with
# Node 24 first on PATH to add them. A stamp of the lockfile's hash skips both
# passes when nothing changed.
set -eu
cd "$(dirname "$0")/.."

stamp=node_modules/.bootstrap-stamp
want=$(sha256sum package-lock.json | cut -d' ' -f1)

ready() {
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
    node_modules/.bin/node -e 'import("@nomicfoundation/edr").then(() => process.exit(0), () => process.exit(1))' 2>/dev/null
}

# The dashboard's browser test (test/dashboard) drives Debian's own Chromium,
# never a downloaded browser: install it when it is missing and we may.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "bootstrap: installing Debian's chromium (for the dashboard's browser test)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } ||
    echo "bootstrap: could not install chromium; test/dashboard needs /usr/bin/chromium" >&2
fi

# The PostgreSQL store's tests (test/store/postgres-*.test.ts and the failover test) start a
# throw-away server from Debian's PostgreSQL binaries: install them when missing and we may.
# In CI those tests fail, never skip, without it.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "bootstrap: installing Debian's postgresql (for the PostgreSQL store's tests)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; } ||
    echo "bootstrap: could not install postgresql; the PostgreSQL store's tests need /usr/lib/postgresql/*/bin" >&2
fi

if ready; then exit 0; fi

echo "bootstrap: installing dependencies (pass 1, $(node --version 2>/dev/null || echo 'no system node'))"
npm ci --no-audit --no-fund --loglevel=error

echo "bootstrap: installing engine-gated native packages (pass 2, Node $(node_modules/.bin/node --version))"
PATH="$PWD/node_modules/.bin:$PATH" npm install --no-audit --no-fund --no-save --loglevel=error

node_modules/.bin/node -e 'import("@nomicfoundation/edr").then(() => process.exit(0), (e) => { console.error("bootstrap: Hardhat EDR did not install:", e.message); process.exit(1) })'
echo "$want" > "$stamp"
echo "bootstrap: ready (Node $(node_modules/.bin/node --version))"
