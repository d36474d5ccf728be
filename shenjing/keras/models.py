"""`keras.models`: Model, Sequential and the model-level functions of Keras's API.

The classes live in model.py (Model, Functional) and sequential.py; loading and saving in
saving.py, which is generic (it rebuilds any registered layer or model class from its
config), so the import order runs one way: models -> saving -> layers.
"""

from __future__ import annotations

import json
from typing import Any

from . import saving
from .architecture import layer_config, model_from_config
from .model import Functional, Model
from .sequential import Sequential

__all__ = ["Model", "Sequential", "Functional", "model_from_config", "model_from_json",
           "clone_model", "load_model", "save_model"]


def model_from_json(json_string: str, custom_objects: dict | None = None) -> Model:
    return model_from_config(json.loads(json_string), custom_objects)


def clone_model(model: Model, custom_objects: dict | None = None) -> Model:
    """A new model with the same architecture and freshly initialized weights."""
    config = json.loads(json.dumps(layer_config(model)))
    return model_from_config(config, custom_objects)


def save_model(model: Model, filepath: str, overwrite: bool = True, **kwargs: Any) -> None:
    model.save(filepath, overwrite=overwrite, **kwargs)


def load_model(filepath: str, custom_objects: dict | None = None, compile: bool = True,
               safe_mode: bool = True) -> Model:
    """Rebuild a model saved by `model.save` (.keras or .h5); see saving.load_model."""
    return saving.load_model(filepath, custom_objects=custom_objects, compile=compile)
