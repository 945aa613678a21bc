#!/usr/bin/env bash
# The GPU check of the trainer: ResNet-9 (models/resnet9.net) with the seed's recipe, 3 seeds,
# on the real CIFAR-10 (the JPEG copy in ../shared/data), in one device call of under 8 minutes.
#
# Prepare, on the development machine, in the repository root (.gpu/ is ignored by git):
#   mkdir -p .gpu && cp ../shared/data/cifar10-jpg.tar.xz .gpu/
#   python3 -m pip download --no-deps -d .gpu lark==1.3.1     # the GPU image has no lark
# Run with the device tool: command "bash tests/gpu/resnet9.sh", carry [".gpu"], timeout_s 540.
# Prints the GPU and versions; writes $OUT/resnet9.json (per-epoch records, evidence) and the log.
set -euo pipefail
out=${OUT:-/tmp/netdsl-gpu}
mkdir -p "$out" /tmp/site /tmp/data

python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/*.whl
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__,
'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), torch.cuda.get_device_name())"

tar xJf .gpu/cifar10-jpg.tar.xz -C /tmp/data
python3 -m netdsl run models/resnet9.net --dataset /tmp/data/cifar10-jpg --data-dir /tmp/cache \
    --runs 3 --json "$out/resnet9.json" 2>&1 | tee "$out/resnet9.log"
