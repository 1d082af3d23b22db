#!/usr/bin/env bash
# The main job, end to end, as far as the project goes today: the environment suite, then small
# real pursuit datasets of expert and deliberately degenerate behaviour, collected in parallel,
# verified, converted to Zarr and listed with their normalised scores.
set -euo pipefail
bin=.venv/bin

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
