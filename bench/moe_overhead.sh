#!/usr/bin/env bash
# Tokens/s of mixture-of-experts models against the dense model with the same active
# parameters, on the CPU backend, back to back: top-1 over 4 experts of the dense MLP's width,
# and top-2 over 8 experts of half its width (so both MoEs also hold the same total parameters).
# Each MoE uses its defaults otherwise (gating, dropless routing). Shared machines are noisy:
# compare the ratios of one run, not absolute figures across runs.
#
#   bench/moe_overhead.sh [STEPS] [THREADS]
#   BIN=path/to/codescale bench/moe_overhead.sh ...   # time another build (e.g. a base commit)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-40}
threads=${2:-2}
if [ -z "${BIN:-}" ]; then
    cargo build -q --workspace --bin codescale
    BIN=target/debug/codescale
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Trains `$2` with the extra TOML lines `$3` into `$work/$1` and prints its tokens/s.
rate() {
    cat > "$work/$1.toml" <<TOML
language = "python"
model = "$2"
$3
seq_len = 128
batch_size = 16
tokens = $(( steps * 16 * 128 ))
eval_tokens = 128
threads = $threads
TOML
    "$BIN" train "$work/$1.toml" --out "$work/$1" --quiet >/dev/null
    python3 -c "import json; print(json.load(open('$work/$1/trial.json'))['metrics']['tokens_per_s'])"
}

printf '%-8s %-5s %-8s %12s %12s %7s\n' model top_k experts "dense tok/s" "moe tok/s" ratio
for model in d64-l2 d128-l4 d256-l6; do
    for top_k in 1 2; do
        dense=$(rate dense "$model" 'arch = "dense"')
        d_ff=$(python3 -c "import json; print(json.load(open('$work/dense/trial.json'))['config']['d_ff'])")
        n_experts=$(( 4 * top_k ))
        d_expert=$(( d_ff / top_k ))
        moe=$(rate moe "$model" "arch = \"moe\""$'\n'"n_experts = $n_experts"$'\n'"top_k = $top_k"$'\n'"d_expert = $d_expert")
        printf '%-8s %-5s %-8s %12.0f %12.0f %7.2f\n' "$model" "$top_k" "${n_experts}x$d_expert" "$dense" "$moe" "$(python3 -c "print($dense / $moe)")"
        rm -rf "$work/dense" "$work/moe"
    done
done
