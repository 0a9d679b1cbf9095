#!/usr/bin/env bash
# The CUDA trainer on a real GPU, checked and measured against PyTorch (issue #19).
#
# Run here (with Rust): builds the release `codescale` with `--features cuda`, a small corpus,
# and packs them with bench/gpu_run.py and bench/torch_reference.py into one self-extracting
# file. Run that file on the GPU machine, which needs Python 3 with PyTorch (CUDA) and nothing
# else (no Rust, no network):
#
#   bench/gpu.sh [--skip-build] [--out DIR] [--rehearse]
#   → DIR/codescale-gpu-bench.run            (default DIR: target/gpu-bench)
#   on the GPU machine:  bash codescale-gpu-bench.run RESULTS_DIR [gpu_run.py options]
#
# gpu_run.py's options: --phase checks|bench|all, --no-compile, --timeout S, --cpu-dry-run.
# --rehearse runs the file here on the CPU (--cpu-dry-run: Flex and PyTorch on the CPU, tiny
# shapes) and checks that its GPU mode stops with a clear error where there is no nvidia-smi.
#
# CUDARC_CUDA_VERSION picks the CUDA driver API cudarc is built against (default 13000, CUDA
# 13.0, the GPU machines' driver 580): without it cudarc takes its newest bindings (13.4), whose
# entry points an older driver may lack. It must be `<major>0<minor>0`.
set -euo pipefail
cd "$(dirname "$0")/.."

build=1 rehearse=0 out=target/gpu-bench backend=all
usage="usage: bench/gpu.sh [--backend cuda|wgpu|all] [--skip-build] [--out DIR] [--rehearse]"
while [ $# -gt 0 ]; do
    case $1 in
        --skip-build) build=0 ;;
        --rehearse) rehearse=1 ;;
        --out) out=$2; shift ;;
        --backend) backend=$2; shift ;;
        *) echo "$usage" >&2; exit 2 ;;
    esac
    shift
done
case $backend in
    cuda) features=cuda backends=cuda ;;
    wgpu) features=wgpu backends=wgpu ;;
    all) features=cuda,wgpu backends=cuda,wgpu ;;
    *) echo "$usage" >&2; exit 2 ;;
esac
export CUDARC_CUDA_VERSION=${CUDARC_CUDA_VERSION:-13000}

# --workspace: the same features as the tests, so the two builds share their dependencies.
if [ $build = 1 ]; then
    cargo build --release --workspace --features "$features"
fi
bin=target/release/codescale
[ -x $bin ] || { echo "error: $bin is missing: run without --skip-build" >&2; exit 2; }

bundle=$out/codescale-gpu-bench
rm -rf "$bundle" && mkdir -p "$bundle/bin" "$bundle/bench" "$bundle/src/python"
# Debug line tables are for this machine's profilers; the GPU machine only runs the binary.
strip --strip-debug -o "$bundle/bin/codescale" $bin
cp bench/gpu_run.py bench/torch_reference.py "$bundle/bench/"
commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo -dirty)
echo "codescale $commit, built $(date -u +%F) with --features $features, CUDARC_CUDA_VERSION=$CUDARC_CUDA_VERSION" > "$bundle/BUILD"
# The backends gpu_run.py checks unless told otherwise: those this binary was built with.
echo "$backends" > "$bundle/BACKENDS"

# The corpus: the top level of this machine's Python standard library (about 5 MB, 170 files),
# carried as source files with its recipe, and built here. The GPU machine reuses the build when
# its fingerprint still matches and otherwise rebuilds it from the carried files in seconds.
stdlib=$(python3 -c "import sysconfig; print(sysconfig.get_paths()['stdlib'])")
cp -p "$stdlib"/*.py "$bundle/src/python/"
cat > "$bundle/recipe.toml" <<'TOML'
# The GPU bench's corpus (bench/gpu.sh): the top level of a Python standard library.
name = "gpu-bench"
tokenizer = "bytes"
validation_fraction = 0.1
[languages.python]
sources = [{ dir = "src/python", include = ["*.py"] }]
TOML
(cd "$bundle" && bin/codescale corpus build recipe.toml --quiet)

file=$out/codescale-gpu-bench.run
{
    cat <<'HEAD'
#!/usr/bin/env bash
# codescale's GPU bench (bench/gpu.sh): trains tiny dense and MoE trials on CUDA and on wgpu
# (those built) and checks them, then measures tokens/s and MFU against PyTorch. Needs python3
# with PyTorch.
#   bash codescale-gpu-bench.run RESULTS_DIR [--backend cuda,wgpu] [--phase checks|bench|all] [--no-compile] [--cpu-dry-run]
set -euo pipefail
results=codescale-gpu-bench-results
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then results=$1; shift; fi
mkdir -p "$results"
work=$(mktemp -d "${TMPDIR:-/tmp}/codescale-gpu-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
payload=$(awk '/^__PAYLOAD__$/ { print NR + 1; exit }' "$0")
tail -n +"$payload" "$0" | tar -xz -C "$work"
cat "$work/codescale-gpu-bench/BUILD"
python3 "$work/codescale-gpu-bench/bench/gpu_run.py" --bundle "$work/codescale-gpu-bench" --results "$results" \
    --backend "$(cat "$work/codescale-gpu-bench/BACKENDS")" "$@"
exit
__PAYLOAD__
HEAD
    tar -cz -C "$out" codescale-gpu-bench
} > "$file"
chmod +x "$file"

echo "bundle: $file ($(du -h "$file" | cut -f1), sha256 $(sha256sum "$file" | cut -c1-16)), $(cat "$bundle/BUILD")"
echo "on the GPU machine (python3 with PyTorch; nothing else), copy it over and run:"
echo "  bash codescale-gpu-bench.run RESULTS_DIR"
echo "it prints the checks and the table, and leaves results.json, table.md and every trial's folder in RESULTS_DIR"

if [ $rehearse = 1 ]; then
    rehearsal=$(mktemp -d)
    trap 'rm -rf "$rehearsal"' EXIT
    if [ $backend != wgpu ] && ! command -v nvidia-smi >/dev/null; then
        echo "rehearsal: without a GPU, the CUDA mode must stop with a clear error (exit 2)"
        code=0
        bash "$file" "$rehearsal/gpu" 2> "$rehearsal/gpu.err" || code=$?
        cat "$rehearsal/gpu.err"
        if [ $code != 2 ] || ! grep -q "nvidia-smi not found" "$rehearsal/gpu.err"; then
            echo "rehearsal failed: expected exit 2 naming nvidia-smi, got $code" >&2
            exit 1
        fi
    fi
    echo "rehearsal: everything else on the CPU (--cpu-dry-run: Flex for CUDA, wgpu on lavapipe; the figures mean nothing)"
    bash "$file" "$rehearsal/cpu" --cpu-dry-run --no-compile
fi
