"""String identifiers -> Keras objects ('adam', 'accuracy', 'relu', 'glorot_uniform', ...).

Each Keras module (activations, losses, metrics, optimizers, initializers, regularizers,
layers) owns one `Registry`; `compile(optimizer='adam')`, `Dense(activation='relu')` and
model loading all resolve names through them, so a name means the same thing everywhere.
Objects are serialized as a name (functions) or `{"class_name": ..., "config": ...}` and
rebuilt from that; nothing is ever pickled.
"""

from __future__ import annotations

import re
from typing import Any, Callable

__all__ = ["Registry", "snake_case", "register_keras_serializable", "get_registered_object",
           "custom_object_scope", "serialize", "deserialize"]

_CUSTOM_OBJECTS: dict[str, Any] = {}
_SCOPES: list[dict] = []


def snake_case(name: str) -> str:
    """'CategoricalCrossentropy' -> 'categorical_crossentropy', 'Conv2D' -> 'conv2d'."""
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    s = re.sub(r"([a-z])([A-Z])", r"\1_\2", s)
    return s.lower()


def _normalize(name: str) -> str:
    return name.replace("_", "").lower()


class Registry:
    """Name -> object table for one kind of Keras object.

    Lookups ignore case and underscores, so 'CategoricalCrossentropy',
    'categorical_crossentropy' and 'categoricalcrossentropy' are the same key.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Any] = {}
        self._names: list[str] = []

    def register(self, *names: str) -> Callable:
        """Decorator: register a class or function under its own name and `names`."""

        def deco(obj):
            self.add(obj, *names)
            return obj

        return deco

    def add(self, obj: Any, *names: str) -> None:
        for n in (getattr(obj, "__name__", None), *names):
            if n:
                self._items[_normalize(n)] = obj
                if n not in self._names:
                    self._names.append(n)

    def lookup(self, name: str, custom_objects: dict | None = None) -> Any:
        """The object registered under `name`; custom objects and scopes come first."""
        for table in ([custom_objects] if custom_objects else []) + _SCOPES[::-1] + \
                [_CUSTOM_OBJECTS]:
            if name in table:
                return table[name]
        key = _normalize(name)
        if key in self._items:
            return self._items[key]
        raise ValueError(
            f"Unknown {self.kind} identifier: {name!r}. Known names: "
            f"{', '.join(sorted(self._names, key=str.lower))}. A custom object must be passed "
            f"as an object or registered with keras.saving.register_keras_serializable()."
        )

    def names(self) -> list[str]:
        return list(self._names)


def register_keras_serializable(package: str = "Custom", name: str | None = None) -> Callable:
    """Decorator making a custom class or function loadable by name from saved models."""

    def deco(obj):
        key = name or obj.__name__
        _CUSTOM_OBJECTS[key] = obj
        _CUSTOM_OBJECTS[f"{package}>{key}"] = obj
        return obj

    return deco


def get_registered_object(name: str, custom_objects: dict | None = None) -> Any:
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    for table in _SCOPES[::-1] + [_CUSTOM_OBJECTS]:
        if name in table:
            return table[name]
    return None


class custom_object_scope:  # noqa: N801  (Keras's name)
    """`with custom_object_scope({'MyLayer': MyLayer}):` makes names resolvable inside."""

    def __init__(self, custom_objects: dict | None = None) -> None:
        self.custom_objects = dict(custom_objects or {})

    def __enter__(self) -> "custom_object_scope":
        _SCOPES.append(self.custom_objects)
        return self

    def __exit__(self, *exc) -> None:
        _SCOPES.pop()


def serialize(obj: Any) -> Any:
    """A JSON-able description of a function or configurable object (None stays None)."""
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if hasattr(obj, "get_config"):
        return {"class_name": type(obj).__name__, "config": obj.get_config()}
    name = getattr(obj, "__name__", None)
    if name is None or name == "<lambda>":
        raise ValueError(
            f"cannot serialize {obj!r}: a lambda or unnamed callable has no name to save; use "
            f"a named function registered with keras.saving.register_keras_serializable()"
        )
    return name


def deserialize(registry: Registry, config: Any, custom_objects: dict | None = None) -> Any:
    """Inverse of `serialize`: a name or {'class_name', 'config'} back to the object."""
    if config is None or not isinstance(config, (str, dict)):
        return config
    if isinstance(config, str):
        return registry.lookup(config, custom_objects)
    if "class_name" not in config:
        raise ValueError(f"cannot deserialize {registry.kind} from {config!r}: no 'class_name'")
    cls = registry.lookup(config["class_name"], custom_objects)
    cfg = config.get("config") or {}
    if hasattr(cls, "from_config"):
        return cls.from_config(cfg)
    return cls(**cfg)
