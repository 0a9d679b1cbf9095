#!/usr/bin/env bash
# Training throughput of codescale (burn, Flex CPU backend) against the PyTorch reference
# (bench/torch_reference.py) on the same data, model and step, back to back.
#
#   bench/throughput.sh [STEPS] [THREADS]
#
# Per shape, at THREADS and at 1 thread: tokens/s of each side and their ratio; each side's CPU
# utilisation over the steps (100 % = one core busy), measured as the extra CPU time over the
# extra wall time of a run with twice the steps, so that start-up (loading, `import torch`)
# cancels out; and the achieved GFLOP/s, counting 6·N per token for every matrix-multiplied
# parameter (the output head included, the embedding gather not) plus 6·layers·seq·d for
# attention's two products. The first line names the CPU and the widest SIMD path it offers,
# which both sides' kernels pick at run time.
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

flags=$(grep -m1 '^flags' /proc/cpuinfo)
case " $flags " in
    *" avx512f "*) simd="AVX-512" ;;
    *" avx2 "*) simd="AVX2" ;;
    *) simd="SSE" ;;
esac
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(nproc) cores; SIMD: $simd"

# `timed OUT CMD...`: runs CMD with stdout to OUT and prints "cpu_seconds wall_seconds".
timed() {
    local out=$1; shift
    /usr/bin/time -f '%U %S %e' -o "$work/time" "$@" >"$out"
    awk '{ printf "%.3f %.3f\n", $1 + $2, $3 }' "$work/time"
}

ours() { # d l threads steps → stdout: JSON metrics; prints timing to fd 3
    local d=$1 l=$2 t=$3 s=$4
    cat > "$work/trial.toml" <<TOML
language = "python"
model = "d$d-l$l"
seq_len = $seq
batch_size = $batch
tokens = $(( (s + 1) * batch * seq ))
warmup = 0.0
eval_tokens = $seq
threads = $t
TOML
    rm -rf "$work/run"
    timed /dev/null $bin train "$work/trial.toml" --out "$work/run" --quiet >&3
    python3 -c "import json; print(json.load(open('$work/run/trial.json'))['metrics']['tokens_per_s'])"
}

theirs() {
    local d=$1 l=$2 t=$3 s=$4
    timed "$work/torch.json" python3 bench/torch_reference.py --data "$shard" --d-model "$d" --layers "$l" --batch $batch --seq $seq --steps "$s" --threads "$t" >&3
    python3 -c "import json; print(json.load(open('$work/torch.json'))['tokens_per_s'])"
}

# `utilisation SIDE d l t` → "tok/s util" from runs of `steps` and 2·`steps` steps.
utilisation() {
    local side=$1 d=$2 l=$3 t=$4
    $side "$d" "$l" "$t" "$steps" 3>"$work/short" >/dev/null
    local tps; tps=$($side "$d" "$l" "$t" $(( 2 * steps )) 3>"$work/long")
    python3 -c "
s = open('$work/short').read().split(); l = open('$work/long').read().split()
wall = float(l[1]) - float(s[1])
# Under a second apart, timer resolution and start-up jitter swamp the difference: no figure.
print($tps, 100 * (float(l[0]) - float(s[0])) / wall if wall > 1 else float('nan'))"
}

batch=16; seq=256
printf '%-9s %7s %15s %13s %9s %15s %13s %9s %7s\n' model threads "codescale tok/s" "CPU util" "GFLOP/s" "pytorch tok/s" "CPU util" "GFLOP/s" ratio
for shape in "128 4" "256 6" "384 8"; do
    set -- $shape
    d=$1; l=$2
    # Every matrix-multiplied parameter: attention 4d², SwiGLU 3·d·d_ff, and the 256-token head.
    d_ff=$(( ((8 * d + 2) / 3 + 15) / 16 * 16 ))
    flops_per_token=$(( 6 * (l * (4 * d * d + 3 * d * d_ff) + 256 * d) + 6 * l * seq * d ))
    for t in $threads 1; do
        read -r a_tps a_util <<<"$(utilisation ours "$d" "$l" "$t")"
        read -r b_tps b_util <<<"$(utilisation theirs "$d" "$l" "$t")"
        python3 -c "
f = $flops_per_token / 1e9
print('%-9s %7d %15.0f %12.0f%% %9.1f %15.0f %12.0f%% %9.1f %7.2f' % ('d$d-l$l', $t, $a_tps, $a_util, $a_tps * f, $b_tps, $b_util, $b_tps * f, $a_tps / $b_tps))"
        [ "$threads" = 1 ] && break
    done
done
