"""A small CNN (MindSpore side): the port states torch's defaults explicitly (pad_mode, has_bias, stride)."""

import numpy as np
from mindspore import Tensor, nn


class SmallCNN(nn.Cell):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, pad_mode="pad", padding=1, has_bias=True)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=1, pad_mode="pad", padding=1, has_bias=True)
        self.bn2 = nn.BatchNorm2d(16)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.AvgPool2d(kernel_size=2, stride=2)
        self.flatten = nn.Flatten()
        self.fc = nn.Dense(16 * 8 * 8, num_classes)

    def construct(self, x):
        x = self.pool1(self.relu1(self.bn1(self.conv1(x))))
        x = self.pool2(self.relu2(self.bn2(self.conv2(x))))
        return self.fc(self.flatten(x))


def build():
    return SmallCNN(), (Tensor(np.zeros((2, 3, 32, 32), np.float32)),)


class _BnMomentumBugCNN(SmallCNN):
    def __init__(self):
        super().__init__()
        # torch's momentum=0.1 copied verbatim: MindSpore's momentum weights the OLD statistics.
        self.bn1 = nn.BatchNorm2d(8, momentum=0.1)
        self.bn2 = nn.BatchNorm2d(16, momentum=0.1)


def build_bn_momentum_bug():
    """BatchNorm given torch's momentum=0.1 verbatim (MindSpore's meaning is inverted: should be 0.9)."""
    return _BnMomentumBugCNN(), (Tensor(np.zeros((2, 3, 32, 32), np.float32)),)
