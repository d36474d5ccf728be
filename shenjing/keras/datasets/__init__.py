"""`keras.datasets`: mnist, fashion_mnist, imdb, reuters, cifar10, boston_housing.

Each `load_data()` reads a local copy under `$SHENJING_DATA` first (also its `keras/`
sub-folder), else downloads Keras's file from its canonical URL, or from the mirror named by
`$SHENJING_DATASETS_URL` (`<mirror>/<file name>`), into a temporary file whose checksum is
verified before it is renamed into place. A wrong checksum raises `DatasetChecksumError`
(a ValueError) and leaves no file behind; offline with no local copy, the loader raises
`DatasetUnavailableError` (a FileNotFoundError) naming the data set, the URL and where to
put the file.
"""

from __future__ import annotations

from types import SimpleNamespace

from . import boston_housing, imdb, reuters
from .files import MIRROR_ENV, DatasetChecksumError, DatasetUnavailableError
from .images import load_cifar10, load_fashion_mnist, load_mnist

__all__ = ["mnist", "fashion_mnist", "imdb", "reuters", "cifar10", "boston_housing",
           "DatasetUnavailableError", "DatasetChecksumError", "MIRROR_ENV"]

mnist = SimpleNamespace(load_data=load_mnist)
fashion_mnist = SimpleNamespace(load_data=load_fashion_mnist)
cifar10 = SimpleNamespace(load_data=load_cifar10)
