#!/usr/bin/env bash
# The main job, end to end, as far as the project goes today:
# the environment suite, then a small real pursuit dataset collected and summarised.
set -euo pipefail
bin=.venv/bin

echo "== The environment suite"
$bin/marl-datagen envs

echo "== Collect a small random-behaviour pursuit dataset (4 pursuers, 3 episodes)"
$bin/marl-datagen collect --env pursuit --agents 4 --quality random --episodes 3 --seed 0 --force

echo "== Read it back"
$bin/marl-datagen info "${MARL_DATA_HOME}/pursuit/n4/random-v1.h5"
