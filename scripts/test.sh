#!/usr/bin/env bash
# Set up (scripts/setup.sh), then: generated code current, import contracts, the test suite.
# Slow benchmarks are excluded here; run them with `.venv/bin/python -m pytest -m slow` or bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/browser.sh
.venv/bin/python -m proto.generate --check
.venv/bin/lint-imports
exec .venv/bin/python -m pytest -m "not slow" "$@"
