#!/usr/bin/env bash
# Training throughput of codescale (burn, Flex CPU backend) against the PyTorch reference
# (bench/torch_reference.py) on the same data, model and step, back to back.
#
#   bench/throughput.sh [STEPS] [THREADS]
#
# Per shape, at THREADS and at 1 thread: tokens/s of each side and their ratio; each side's CPU
# utilisation over the steps (100 % = one core busy): PyTorch's from getrusage around its timed
# steps, codescale's as the extra CPU time over the extra wall time of a run with twice the
# steps, so that loading the corpus and building the model cancel out; and the achieved GFLOP/s, counting 6·N per token for every matrix-multiplied
# parameter (the output head included, the embedding gather not) plus 6·layers·seq·d for
# attention's two products; and each side's fraction of the machine's gemm peak at the model's
# shapes: the GFLOP/s of that step's projection products (forward and backward) run alone, back
# to back, through the trainer's own gemm call (lab/train/examples/gemm_peak.rs); and against
# the machine's FMA ceiling, independent FMA chains on registers at the widest SIMD width
# (lab/train/examples/fma_peak.rs), which no matrix multiply can pass. The first
# line names the CPU and the widest SIMD path it offers, which both sides' kernels pick at run
# time.
#
# Needs `pip install torch numpy` (kept out of CI: the wheels are large). Uses the same build
# as the tests (dependencies at opt-level 3).
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-20}
threads=${2:-2}
cargo build -q --workspace --bin codescale --examples
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

# `theirs d l t` → "tok/s util" of the PyTorch reference.
theirs() {
    python3 bench/torch_reference.py --data "$shard" --d-model "$1" --layers "$2" --batch $batch --seq $seq --steps "$steps" --threads "$3" \
        | python3 -c "import json, sys; r = json.load(sys.stdin); print(r['tokens_per_s'], 100 * r['cpu_util'])"
}

# `utilisation d l t` → "tok/s util" of codescale, from runs of `steps` and 2·`steps` steps.
utilisation() {
    local d=$1 l=$2 t=$3
    ours "$d" "$l" "$t" "$steps" 3>"$work/short" >/dev/null
    local tps; tps=$(ours "$d" "$l" "$t" $(( 2 * steps )) 3>"$work/long")
    echo "codescale d$d-l$l, $t thread(s): cpu and wall seconds, $steps steps: $(cat "$work/short"); $(( 2 * steps )) steps: $(cat "$work/long")" >&2
    python3 -c "
s = open('$work/short').read().split(); l = open('$work/long').read().split()
wall = float(l[1]) - float(s[1])
# Under a second apart, timer resolution and start-up jitter swamp the difference: no figure.
print($tps, 100 * (float(l[0]) - float(s[0])) / wall if wall > 1 else float('nan'))"
}

batch=16; seq=256
printf '%-9s %7s %9s %10s %15s %9s %9s %7s %6s %15s %9s %9s %7s %6s %7s\n' model threads "FMA peak" "gemm peak" "codescale tok/s" "CPU util" "GFLOP/s" "% gemm" "% FMA" "pytorch tok/s" "CPU util" "GFLOP/s" "% gemm" "% FMA" ratio
for shape in "128 4" "256 6" "384 8"; do
    set -- $shape
    d=$1; l=$2
    # Every matrix-multiplied parameter: attention 4d², SwiGLU 3·d·d_ff, and the 256-token head.
    d_ff=$(( ((8 * d + 2) / 3 + 15) / 16 * 16 ))
    flops_per_token=$(( 6 * (l * (4 * d * d + 3 * d * d_ff) + 256 * d) + 6 * l * seq * d ))
    for t in $threads 1; do
        read -r a_tps a_util <<<"$(utilisation "$d" "$l" "$t")"
        read -r b_tps b_util <<<"$(theirs "$d" "$l" "$t")"
        peak=$(target/debug/examples/gemm_peak "$d" "$l" "$t")
        # Beside each row, like the gemm peak: this VM's speed drifts within a run.
        fma=$(target/debug/examples/fma_peak "$t")
        python3 -c "
f, peak, fma = $flops_per_token / 1e9, $peak, $fma
a, au, b, bu = float('$a_tps'), float('$a_util'), float('$b_tps'), float('$b_util')
print('%-9s %7d %9.1f %10.1f %15.0f %8.0f%% %9.1f %6.0f%% %5.0f%% %15.0f %8.0f%% %9.1f %6.0f%% %5.0f%% %7.2f' % ('d$d-l$l', $t, fma, peak, a, au, a * f, 100 * a * f / peak, 100 * a * f / fma, b, bu, b * f, 100 * b * f / peak, 100 * b * f / fma, a / b))"
        [ "$threads" = 1 ] && break
    done
done
