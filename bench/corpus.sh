#!/usr/bin/env bash
# Builds the local corpus from scratch and prints MB/s per stage (read, filter, dedup, tokenize).
#   bench/corpus.sh [recipe.toml] [--tokenizer bpe:4096]
# Uses the dev profile, whose dependencies are optimised (see the root Cargo.toml), so it shares
# the test build instead of compiling polars and tokenizers a second time in release.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cargo run -q -p codescale-data --example corpus_bench -- "$@" --out "$out/corpus"
