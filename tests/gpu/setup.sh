# Sourced by the GPU checks (tests/gpu/*.sh), on any machine with a CUDA GPU, Python and torch:
# lark (and tomli, for a Python before 3.11) from wheels in .gpu/ where no package index can be
# reached, the GPU and versions printed, CIFAR-10 unpacked into /tmp/data. Sets $out (where the
# records go: $OUT, else /tmp/netdsl-gpu) and $data.
#
# Prepare in the repository root (.gpu/ is ignored by git) and bring .gpu/ along:
#   mkdir -p .gpu && cp PATH/TO/cifar10-jpg.tar.xz .gpu/   # the JPEG copy of CIFAR-10
#   python3 -m pip download --no-deps -d .gpu lark==1.3.1 tomli==2.2.1
# then run a check from the repository root: bash tests/gpu/resnet9.sh
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
