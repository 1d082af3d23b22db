#!/usr/bin/env bash
# The main job, end to end: the environment suite; small real pursuit datasets of expert and
# deliberately degenerate behaviour, collected in parallel, verified and converted; then the quick
# benchmark suite: collect → train BC and independent DQN (idqn) on 2 pursuers → evaluate online at 2 and 4 pursuers →
# score table. A second `make demo` resumes the suite and prints the same table.
set -euo pipefail
bin=.venv/bin
out=${DEMO_DIR:-demo-output}

echo "== The environment suite"
$bin/marl-datagen envs

echo "== Collect expert and degenerate (adversarial) pursuit data: 4 pursuers, 4 episodes, 2 workers"
$bin/marl-datagen collect --env pursuit --agents 4 --quality expert --episodes 4 --seed 0 \
  --workers 2 --force
$bin/marl-datagen collect --env pursuit --agents 4 --quality degenerate --episodes 4 --seed 0 \
  --workers 2 --force

echo "== Verify every checksum, convert to Zarr (same content checksum), list"
$bin/marl-datagen verify pursuit-n4-expert-v1
$bin/marl-datagen convert pursuit-n4-expert-v1 --format zarr --force
$bin/marl-datagen list

echo "== The quick suite: train on 2 pursuers, evaluate at 2 and 4, score table (results in $out/quick)"
$bin/marl-bench run --suite quick --out "$out/quick" --resume
$bin/marl-bench report "$out/quick" --plots "$out/quick/plots" > "$out/quick/report.md"
echo "report: $out/quick/report.md, plots: $out/quick/plots"
