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

stamp=".venv/.msparity-setup-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  [ -x .venv/bin/python ] || "$python_bin" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[coordinator,pt,ms,dev,realworld]"
  # timm's requirements would swap the CPU torch for a CUDA 2.14; mindone pins what it does not import
  .venv/bin/python -m pip install --quiet --no-deps timm==1.0.31 torchvision==0.28.0 mindone==0.5.0
  rm -f .venv/.msparity-setup-*
  touch "$stamp"
fi
