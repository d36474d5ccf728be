"""torchvision.utils' names: `make_grid` and `save_image`."""

from shenjing.utils.image import make_grid, save_image

__all__ = ["make_grid", "save_image"]
