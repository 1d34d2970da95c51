#!/usr/bin/env bash
# Create .venv in the repo root with everything (torch CPU, mindspore, coordinator, dev tools).
# Idempotent: skips the install when pyproject.toml has not changed since the last run.
set -euo pipefail
cd "$(dirname "$0")/.."

python_bin="${PYTHON:-}"
if [ -z "$python_bin" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python_bin="$candidate"; break; fi
  done
fi
[ -n "$python_bin" ] || { echo "setup: no python3 found; install Python 3.11" >&2; exit 3; }

stamp=".venv/.msparity-setup-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  [ -x .venv/bin/python ] || "$python_bin" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[coordinator,pt,ms,dev]"
  rm -f .venv/.msparity-setup-*
  touch "$stamp"
fi
