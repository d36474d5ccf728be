"""torchvision.models' constructor for the architecture shenjing's zoo shares with it.

`alexnet(weights=None, num_classes=1000)` builds torchvision's AlexNet layout (same parameter
names, so a torchvision state_dict exported to safetensors loads into it). Pretrained weights
are not downloaded: shenjing has no model hub, so `weights` other than None is refused with
the way to load exported weights instead.
"""

from __future__ import annotations

from shenjing.models import AlexNet

__all__ = ["AlexNet", "alexnet"]


def alexnet(weights=None, progress: bool = True, **kwargs) -> AlexNet:
    """torchvision.models.alexnet: a freshly initialized AlexNet (weights=None only)."""
    if weights is not None:
        raise ValueError(
            f"alexnet(weights={weights!r}): shenjing downloads no pretrained weights; build "
            "alexnet() and load exported ones with model.load_state_dict(shenjing.load(PATH)) "
            "(save them from torchvision with "
            "safetensors.torch.save_file(model.state_dict(), PATH))")
    return AlexNet(**kwargs)
