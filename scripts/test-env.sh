#!/usr/bin/env bash
# Everything the test suite needs beyond pip: Redis and PostgreSQL answering,
# and Debian's Chromium for the browser tests. Safe to run repeatedly.
set -eu
here="$(cd "$(dirname "$0")/.." && pwd)"
if [ -x "$here/../shared/services.sh" ]; then
  bash "$here/../shared/services.sh"
elif ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  echo "test-env: Redis is not answering on 127.0.0.1:6379 and ../shared/services.sh is missing" >&2
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "test-env: installing Debian's chromium for the browser tests" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
