"""Placeholder: convolution and pooling ops are being written (im2col + one GEMM)."""


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    raise NotImplementedError


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    raise NotImplementedError


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    raise NotImplementedError


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    raise NotImplementedError


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    raise NotImplementedError


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    raise NotImplementedError


def adaptive_avg_pool2d(input, output_size):
    raise NotImplementedError


def adaptive_max_pool2d(input, output_size):
    raise NotImplementedError
