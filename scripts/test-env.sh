#!/usr/bin/env bash
# Everything the test suite needs beyond pip: the redis-server and PostgreSQL binaries (the tests start
# private instances of both on free ports in temporary directories: no system service is used) and
# Debian's Chromium for the browser tests. Installs what is missing with apt; safe to run repeatedly.
set -eu
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "test-env: installing ${missing[*]} from Debian packages" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# the Debian package starts system services; the tests do not need them (they start their own)
command -v redis-server >/dev/null 2>&1 || { echo "test-env: redis-server is still missing" >&2; exit 1; }
echo "test-env: redis-server, PostgreSQL (initdb/pg_ctl) and chromium are installed"
