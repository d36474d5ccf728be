"""`keras.datasets`: mnist, fashion_mnist, imdb, reuters, cifar10, boston_housing.

Each `load_data()` reads a local copy under `$SHENJING_DATA` first (also its `keras/`
sub-folder), else downloads from the canonical URL with its checksum checked, and raises
`DatasetUnavailableError` (a FileNotFoundError) saying where to put the file when offline.
"""

from __future__ import annotations

from types import SimpleNamespace

from . import boston_housing, imdb, reuters
from .files import DatasetUnavailableError
from .images import load_cifar10, load_fashion_mnist, load_mnist

__all__ = ["mnist", "fashion_mnist", "imdb", "reuters", "cifar10", "boston_housing",
           "DatasetUnavailableError"]

mnist = SimpleNamespace(load_data=load_mnist)
fashion_mnist = SimpleNamespace(load_data=load_fashion_mnist)
cifar10 = SimpleNamespace(load_data=load_cifar10)
