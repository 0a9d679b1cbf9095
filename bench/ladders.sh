#!/usr/bin/env bash
# The published-ladder benchmark: every ladder in ../shared/ladders fitted on its paper's fit rows,
# each held-out target predicted by auto and by every law form, beside the paper's own error.
# Thresholds: tests/ladders.rs. Usage: bench/ladders.sh [LADDERS_DIR] [BOOTSTRAP]
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --quiet --example ladders -- "${1:-../shared/ladders}" "${2:-200}"
