"""torchvision.transforms' names (ToTensor, Normalize, Resize, Compose, augmentations)."""

from shenjing.data.transforms import *  # noqa: F403
from shenjing.data.transforms import __all__, functional  # noqa: F401
