#!/usr/bin/env bash
# What whole curves buy: each finished sweep's held-out targets predicted by the final-point law
# and by the whole-curve law (every run, the largest budget's runs alone, budgets ≤ half the
# largest), with the training compute each used. Usage: bench/curves.sh [SWEEP_DIR...]
# (default runs/ladder runs/quickstart, which `codescale run sweeps/<name>.toml` trains).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then set -- runs/ladder runs/quickstart; fi
exec cargo run --quiet --example curves -- "$@"
