#!/usr/bin/env bash
# Create .venv with genlab and its test dependencies. torch 2.13.0 (CPU wheel) is installed
# first, on its own, so no other package can pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e ".[test]"
