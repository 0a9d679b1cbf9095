#!/usr/bin/env bash
# What ladder designs can pin down, by simulation (lab/fit/examples/design.rs): each row draws
# DATASETS ladders around a law with the noise measured on the quickstart (two seeds of every
# trial: 0.86 % of the loss shared by a trunk's budgets, 0.64 % per run), fits each as the lab
# does (noise-matched Huber threshold, 200 bootstrap resamples over configurations) and reports
#   * the median 95 % interval width ÷ estimate of α_N, α_D, L_inf (below 1: identified),
#   * how often all three are identified at once,
#   * the prediction's median bias at the target (4× the largest N, largest budget), and the
#     median |error| of the measured target (its seeds' mean) against the prediction, and how
#     often that is within 1.5 %,
#   * how often the additivity check rejects the law's form (needs seeds ≥ 2).
# Two truths: the additive law fitted to the quickstart's go ladder, and Kaplan's form fitted to
# the same ladder's two-seed means (its N × D interaction is what the quickstart measures).
#
#   bench/design.sh [DATASETS]     (about 6 minutes on 2 cores at 100)
set -euo pipefail
cd "$(dirname "$0")/.."
datasets=${1:-100}
cargo build -q -p codescale-fit --example design
bin=target/debug/examples/design
additive=additive:1.382,25.37,277.3,0.4298,0.4510
kaplan=kaplan:0,$(python3 -c 'import math; print(f"{math.exp(14.117)},{math.exp(17.368)}")'),0.159,0.198
qs_n=6736,13944,26784,55536
wide_n=3300,6736,13944,26784,55536,111000
budgets=249856,499712,999424
long=249856,499712,999424,1998848,3997696
echo "| truth | noise (trunk / run) | sizes × budgets × seeds | ladder 6·N·D | width ÷ estimate α_N / α_D / L_inf | all identified | target bias | median target error | within 1.5 % | form rejected |"
echo "|---|---|---|---|---|---|---|---|---|---|"
# row TRUTH LAW SIZES BUDGETS SEEDS TRUNK RUN TARGET_N
row() { printf '| %s | %s / %s %% ' "$1" "$(pct "$6")" "$(pct "$7")"; shift; "$bin" "$@" "$datasets" 200; }
pct() { python3 -c "print(f'{100 * $1:.2g}')"; }
for truth in additive kaplan; do
  law=${!truth}
  row "$truth" "$law" $qs_n $budgets 1 0.0086 0.0064 222144
  row "$truth" "$law" $qs_n $budgets 2 0.0086 0.0064 222144
  row "$truth" "$law" $qs_n $budgets 4 0.0086 0.0064 222144
  row "$truth" "$law" $wide_n $budgets 2 0.0086 0.0064 444000
  row "$truth" "$law" $qs_n $long 2 0.0086 0.0064 222144
  row "$truth" "$law" $qs_n $budgets 2 0 0.0005 222144
done
