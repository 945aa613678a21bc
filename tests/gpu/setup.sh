# Sourced by the GPU checks (tests/gpu/*.sh): lark (and tomli, for a Python before 3.11) from
# the carried wheels, the GPU and versions printed, CIFAR-10 unpacked into /tmp/data. Sets
# $out ($OUT, where the device tool collects files) and $data.
#
# Prepare, on the development machine, in the repository root (.gpu/ is ignored by git):
#   mkdir -p .gpu && cp ../shared/data/cifar10-jpg.tar.xz .gpu/
#   python3 -m pip download --no-deps -d .gpu lark==1.3.1 tomli==2.2.1  # the GPU image has neither
# and carry [".gpu"] in the device call.
set -euo pipefail
out=${OUT:-/tmp/netdsl-gpu}
mkdir -p "$out" /tmp/site /tmp/data

python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/*.whl
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__,
'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), torch.cuda.get_device_name())"

tar xJf .gpu/cifar10-jpg.tar.xz -C /tmp/data
data=/tmp/data/cifar10-jpg
