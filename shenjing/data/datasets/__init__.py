"""Real data sets in their standard formats: MNIST / Fashion-MNIST (IDX), image folders, IMDB."""

from .idx import MNIST, FashionMNIST, load_idx_arrays, read_idx
from .imagefolder import IMG_EXTENSIONS, DatasetFolder, ImageFolder, default_loader
from .imdb import IMDB

__all__ = [
    "IMDB",
    "IMG_EXTENSIONS",
    "MNIST",
    "DatasetFolder",
    "FashionMNIST",
    "ImageFolder",
    "default_loader",
    "load_idx_arrays",
    "read_idx",
]
