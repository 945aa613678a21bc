"""A hand-written ResNet-9 (the layers of models/resnet9.net, written the way
../shared/bench/ref_train.py writes them): the baseline the compiled module is held to."""
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
