"""torchvision's names over shenjing: `import shenjing.vision as torchvision`.

A program written for torchvision runs with only its imports changed:
`from shenjing.vision import datasets, transforms, models` and
`from shenjing.vision.utils import make_grid, save_image`. Everything here is the same object
as in `shenjing.data` / `shenjing.utils` / `shenjing.models`; this package only gives it
torchvision's module layout.
"""

from shenjing.vision import datasets, models, transforms, utils

__all__ = ["datasets", "models", "transforms", "utils"]
