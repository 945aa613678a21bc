"""Hand-written nets: ResNet-9 (the layers of models/resnet9.net, written the way
../shared/bench/ref_train.py writes them) and airbench94 (models/airbench94.net, as
../shared/bench/ref_airbench.py writes it): the baselines the compiled modules are held to."""
import torch
from torch import nn


def conv_bn(c_in, c_out):
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True)]


class Residual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.branch = nn.Sequential(*conv_bn(c, c), *conv_bn(c, c))

    def forward(self, x):
        return x + self.branch(x)


class Scale(nn.Module):
    def __init__(self, weight):
        super().__init__()
        self.weight = weight

    def forward(self, x):
        return x * self.weight


def resnet9(prep=64, layer1=128, layer2=256, layer3=512, classes=10, weight=0.125):
    return nn.Sequential(
        *conv_bn(3, prep),
        *conv_bn(prep, layer1), nn.MaxPool2d(2), Residual(layer1),
        *conv_bn(layer1, layer2), nn.MaxPool2d(2),
        *conv_bn(layer2, layer3), nn.MaxPool2d(2), Residual(layer3),
        nn.MaxPool2d(4), nn.Flatten(), nn.Linear(layer3, classes, bias=False), Scale(weight))


def airbench94(width=64, classes=10):
    """airbench94's net as ../shared/bench/ref_airbench.py writes it (its whitening layer left
    at its random start: the step costs the same)."""
    def group(c_in, c_out):
        return [dirac_conv(c_in, c_out), nn.MaxPool2d(2), frozen_scale_bn(c_out), nn.GELU(),
                dirac_conv(c_out, c_out), frozen_scale_bn(c_out), nn.GELU()]
    widths = (width, 4 * width, 4 * width)
    whiten = nn.Conv2d(3, 24, 2, padding=0, bias=True)
    whiten.weight.requires_grad_(False)
    return nn.Sequential(whiten, nn.GELU(), *group(24, widths[0]), *group(widths[0], widths[1]),
                         *group(widths[1], widths[2]), nn.MaxPool2d(3), nn.Flatten(),
                         nn.Linear(widths[2], classes, bias=False), Scale(1 / 9))


def dirac_conv(c_in, c_out):
    conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
    with torch.no_grad():
        nn.init.dirac_(conv.weight[:c_in])
    return conv


def frozen_scale_bn(c):
    bn = nn.BatchNorm2d(c, eps=1e-12, momentum=0.4)
    bn.weight.requires_grad_(False)
    return bn
