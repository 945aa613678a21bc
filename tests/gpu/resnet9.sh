#!/usr/bin/env bash
# The GPU check of the trainer: ResNet-9 (models/resnet9.net) with the seed's recipe, 3 seeds,
# on the real CIFAR-10 (the JPEG copy in ../shared/data), under 8 minutes on one GPU.
#
# Prepare as tests/gpu/setup.sh says; run from the repository root on any machine with a CUDA
# GPU: bash tests/gpu/resnet9.sh
# Prints the GPU and versions; writes $OUT/resnet9.json (per-epoch records, evidence) and the log.
source tests/gpu/setup.sh
python3 -m netdsl run models/resnet9.net --dataset $data --data-dir /tmp/cache \
    --runs 3 --json "$out/resnet9.json" 2>&1 | tee "$out/resnet9.log"
