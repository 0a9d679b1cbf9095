#!/usr/bin/env bash
# Tokens/s of a mixture-of-experts model against the dense model with the same active
# parameters (4 experts of the dense MLP's width, top-1), on the CPU backend, back to back.
#
#   bench/moe_overhead.sh [STEPS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-40}
threads=${2:-2}
cargo build -q --bin codescale
bin=target/debug/codescale
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

printf '%-8s %-6s %16s %16s %8s\n' model batch "dense tok/s" "moe tok/s" "ratio"
for model in d64-l2 d128-l4; do
    for arch in dense moe; do
        experts=""
        [ "$arch" = moe ] && experts=$'n_experts = 4\ntop_k = 1'
        cat > "$work/$arch.toml" <<TOML
language = "python"
arch = "$arch"
model = "$model"
$experts
seq_len = 128
batch_size = 16
tokens = $(( steps * 16 * 128 ))
eval_tokens = 128
threads = $threads
TOML
        $bin train "$work/$arch.toml" --out "$work/$model-$arch" --quiet >/dev/null
    done
    rate() { python3 -c "import json; print(json.load(open('$1/trial.json'))['metrics']['tokens_per_s'])"; }
    dense=$(rate "$work/$model-dense"); moe=$(rate "$work/$model-moe")
    printf '%-8s %-6s %16.0f %16.0f %8.2f\n' "$model" 16 "$dense" "$moe" "$(python3 -c "print($dense/$moe)")"
done
