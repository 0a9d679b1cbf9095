#!/usr/bin/env bash
# Training throughput of codescale (burn, Flex CPU backend) against the PyTorch reference
# (bench/torch_reference.py) on the same data, model and step, back to back.
#
#   bench/throughput.sh [STEPS] [THREADS]
#
# Needs `pip install torch numpy` (kept out of CI: the wheels are large). Uses the same build
# as the tests (dependencies at opt-level 3).
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-20}
threads=${2:-2}
cargo build -q --bin codescale
bin=target/debug/codescale
$bin corpus build corpora/local.toml --quiet >/dev/null
shard=$(ls corpus/local-bytes/python.train.bin)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

printf '%-10s %-8s %-6s %14s %14s %8s\n' model batch seq "codescale tok/s" "pytorch tok/s" ratio
for shape in "128 4" "256 6"; do
    set -- $shape
    d=$1; l=$2; batch=16; seq=256
    cat > "$work/trial.toml" <<TOML
language = "python"
model = "d$d-l$l"
seq_len = $seq
batch_size = $batch
tokens = $(( (steps + 1) * batch * seq ))
warmup = 0.0
eval_tokens = $seq
threads = $threads
TOML
    $bin train "$work/trial.toml" --out "$work/d$d" --quiet >/dev/null
    ours=$(python3 -c "import json,sys; print(json.load(open('$work/d$d/trial.json'))['metrics']['tokens_per_s'])")
    theirs=$(python3 bench/torch_reference.py --data "$shard" --d-model "$d" --layers "$l" --batch $batch --seq $seq --steps "$steps" --threads "$threads" | python3 -c "import json,sys; print(json.load(sys.stdin)['tokens_per_s'])")
    printf '%-10s %-8s %-6s %14.0f %14.0f %8.2f\n' "d$d-l$l" $batch $seq "$ours" "$theirs" "$(python3 -c "print($ours/$theirs)")"
done
