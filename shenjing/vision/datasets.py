"""torchvision.datasets' names: MNIST, FashionMNIST, ImageFolder, DatasetFolder (and IMDB)."""

from shenjing.data.datasets import *  # noqa: F403
from shenjing.data.datasets import __all__  # noqa: F401
