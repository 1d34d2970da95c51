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
# pip, quietly: no notes about find-links folders this machine lacks, no setuptools banner about editable installs
pip_install() {
  PYTHONWARNINGS="ignore:Editable installation" .venv/bin/python -m pip install --quiet --disable-pip-version-check \
    "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

if [ ! -f "$stamp" ]; then
  echo "setup: installing torch 2.13.0 (CPU), mindspore 2.10.0 and msparity into .venv (a few minutes, once)" >&2
  [ -x .venv/bin/python ] || "$python_bin" -m venv .venv
  pip_install --upgrade pip
  pip_install -e ".[coordinator,pt,ms,dev,realworld]"
  # timm's requirements would swap the CPU torch for a CUDA 2.14; mindone pins what it does not import
  pip_install --no-deps timm==1.0.31 torchvision==0.28.0 mindone==0.5.0
  echo "setup: .venv ready" >&2
  rm -f .venv/.msparity-setup-*
  touch "$stamp"
fi
