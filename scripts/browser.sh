#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (tests/e2e/test_browser.py), quietly, when it is missing.
# Never fails the run: where it cannot be installed (not root, no apt-get, no registry) the tests skip and say so.
set -uo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: chromium not installed (needs root and apt-get); the browser tests will skip" >&2
  exit 0
fi
echo "setup: installing Debian's chromium for the browser tests" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq chromium >/dev/null 2>&1 \
  || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; } \
  || echo "setup: apt-get could not install chromium; the browser tests will skip" >&2
exit 0
