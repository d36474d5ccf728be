"""Keras optimizers: Keras's names, defaults and update rules over `shenjing.optim`.

A Keras optimizer is a configuration (learning_rate=0.001, epsilon=1e-7, ...) until `fit`
hands it the model's parameters; it then builds the matching `shenjing.optim` optimizer and
drives it. What Keras adds on top of torch's algorithms is done here, once for all of them:
learning-rate schedules, `clipnorm` / `clipvalue` / `global_clipnorm`, and decoupled
`weight_decay` (Keras 3 applies `w -= lr * weight_decay * w` before every update).

Where Keras's formula differs from torch's, Keras's is used:
* Adam/AdamW: Keras adds epsilon to sqrt(v) *before* bias correction; torch after. The torch
  optimizer is given `eps / sqrt(1 - beta_2**t)` each step, which is the same update exactly.
* RMSprop: Keras divides by sqrt(v + epsilon), torch by sqrt(v) + epsilon: the Keras
  optimizer builds `optim.RMSprop(..., eps_inside_sqrt=True)`.
* SGD momentum (`m = momentum*m - lr*g; w += m`) equals torch's for a constant lr.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from .. import optim
from ..autograd import no_grad
from ..nn.utils import clip_grad_norm_, clip_grad_value_
from ..optim.optimizer import Optimizer as _TorchOptimizer
from . import schedules
from .registry import Registry, serialize
from .registry import deserialize as _deserialize

__all__ = ["Optimizer", "SGD", "RMSprop", "Adam", "AdamW", "Adagrad", "schedules", "get",
           "serialize", "deserialize"]

REGISTRY = Registry("optimizer")


class Optimizer:
    """Base class of the Keras optimizers (configuration + the built shenjing optimizer)."""

    _defaults: dict = {}

    def __init__(self, learning_rate: Any = 0.001, weight_decay: float | None = None,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, name: str | None = None,
                 **kwargs) -> None:
        if "lr" in kwargs:  # Keras 2's name
            learning_rate = kwargs.pop("lr")
        for legacy in ("decay", "use_ema", "ema_momentum", "ema_overwrite_frequency",
                       "loss_scale_factor", "gradient_accumulation_steps", "jit_compile"):
            value = kwargs.pop(legacy, None)
            if value not in (None, False, 0, 0.0, 0.99):
                raise NotImplementedError(f"{type(self).__name__}: argument {legacy}={value!r} "
                                          f"is not supported")
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected arguments {sorted(kwargs)}")
        if sum(x is not None for x in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError("only one of clipnorm, clipvalue and global_clipnorm can be set")
        self._learning_rate = learning_rate if callable(learning_rate) else float(learning_rate)
        self.weight_decay = weight_decay
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.name = name or type(self).__name__.lower()
        self.iterations = 0
        self._impl: _TorchOptimizer | None = None
        self._params: list = []
        self._owner = None  # the model whose weights it was built on

    # ------------------------------------------------------------------ learning rate
    @property
    def learning_rate(self) -> float:
        """The current learning rate (a schedule is evaluated at the current iteration)."""
        lr = self._learning_rate
        return float(lr(self.iterations)) if callable(lr) else lr

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        self._learning_rate = value if callable(value) else float(value)
        if self._impl is not None and not callable(value):
            for group in self._impl.param_groups:
                group["lr"] = float(value)

    lr = learning_rate

    # ------------------------------------------------------------------ building / stepping
    @property
    def built(self) -> bool:
        return self._impl is not None

    def build(self, params: Iterable) -> None:
        """Create the underlying shenjing optimizer over `params` (done by fit)."""
        self._params = list(params)
        if not self._params:
            raise ValueError(f"{type(self).__name__}: the model has no weights to optimize")
        self._impl = self._make(self._params, self.learning_rate)

    def _make(self, params: list, lr: float) -> _TorchOptimizer:  # pragma: no cover
        raise NotImplementedError

    def _before_step(self, group: dict) -> None:
        """Per-step hyper-parameter adjustments (Adam's epsilon mapping)."""

    def zero_grad(self) -> None:
        if self._impl is not None:
            self._impl.zero_grad()

    def step(self) -> None:
        """Apply one update from the parameters' `.grad` (clipping and weight decay first)."""
        if self._impl is None:
            raise RuntimeError(f"{type(self).__name__} is not built: call build(params) first")
        lr = self.learning_rate
        if self.weight_decay or self.clipnorm is not None or self.clipvalue is not None or \
                self.global_clipnorm is not None:
            live = [p for p in self._params if p.grad is not None and p.requires_grad]
            self._clip(live)
            if self.weight_decay:
                shrink = 1.0 - lr * float(self.weight_decay)
                with no_grad():
                    for p in live:
                        p.mul_(shrink)
        for group in self._impl.param_groups:
            group["lr"] = lr
            self._before_step(group)
        self._impl.step()
        self.iterations += 1

    def apply(self, grads: Iterable, trainable_variables: Iterable | None = None) -> None:
        """Keras 3's `optimizer.apply(grads, variables)`: one update from given gradients
        (a Weight's gradient may be in its Keras layout or its parameter's layout)."""
        import numpy as np

        from ..tensor import as_tensor

        variables = list(self._params if trainable_variables is None else trainable_variables)
        params = [v.value if hasattr(v, "keras_tensor") else v for v in variables]
        if self._impl is None:
            self.build(params)
        for v, p, g in zip(variables, params, grads, strict=True):
            if g is None:
                continue
            g = g.numpy() if hasattr(g, "numpy") else np.asarray(g)
            if tuple(g.shape) != tuple(p.shape) and hasattr(v, "_from_keras"):
                g = np.asarray(v._from_keras(g))
            p.grad = as_tensor(np.ascontiguousarray(g, dtype=p.numpy().dtype))
        self.step()

    def apply_gradients(self, grads_and_vars: Iterable) -> None:
        """Keras 2's spelling: `apply_gradients(zip(grads, variables))`."""
        pairs = list(grads_and_vars)
        self.apply([g for g, _ in pairs], [v for _, v in pairs])

    def _clip(self, params: list) -> None:
        """Keras's clipvalue / clipnorm (each gradient on its own) / global_clipnorm (all
        together), done by the core's clipping functions."""
        if self.clipvalue is not None:
            clip_grad_value_(params, float(self.clipvalue))
        elif self.clipnorm is not None:
            for p in params:
                clip_grad_norm_([p], float(self.clipnorm))
        elif self.global_clipnorm is not None:
            clip_grad_norm_(params, float(self.global_clipnorm))

    # ------------------------------------------------------------------ state / config
    def state_dict(self) -> dict:
        return {"iterations": self.iterations,
                "impl": self._impl.state_dict() if self._impl is not None else None}

    def load_state_dict(self, state: dict) -> None:
        self.iterations = int(state.get("iterations", 0))
        if state.get("impl") is not None:
            if self._impl is None:
                raise RuntimeError("load_state_dict: build the optimizer before loading state")
            self._impl.load_state_dict(state["impl"])

    def get_config(self) -> dict:
        lr = self._learning_rate
        cfg = {"name": self.name,
               "learning_rate": serialize(lr) if callable(lr) else lr,
               "weight_decay": self.weight_decay, "clipnorm": self.clipnorm,
               "clipvalue": self.clipvalue, "global_clipnorm": self.global_clipnorm}
        cfg.update({k: getattr(self, k) for k in self._defaults})
        return cfg

    @classmethod
    def from_config(cls, config: dict) -> "Optimizer":
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.get(config["learning_rate"])
        return cls(**config)

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        REGISTRY.add(cls, cls.__name__.lower())

    def __repr__(self) -> str:
        extra = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._defaults)
        return f"{type(self).__name__}(learning_rate={self._learning_rate!r}, {extra})"


def _keras_init(self, learning_rate, kwargs: dict, **hyper) -> None:
    Optimizer.__init__(self, learning_rate, **kwargs)
    for k, v in hyper.items():
        setattr(self, k, v)


class SGD(Optimizer):
    """Gradient descent with optional momentum and Nesterov momentum (Keras default lr 0.01)."""

    _defaults = {"momentum": 0.0, "nesterov": False}

    def __init__(self, learning_rate: Any = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, **kwargs) -> None:
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"SGD: momentum must be in [0, 1], got {momentum}")
        _keras_init(self, learning_rate, kwargs, momentum=float(momentum), nesterov=nesterov)

    def _make(self, params: list, lr: float) -> _TorchOptimizer:
        return optim.SGD(params, lr=lr, momentum=self.momentum,
                         nesterov=self.nesterov and self.momentum > 0)


class RMSprop(Optimizer):
    """RMSprop with Keras's update rule (see the module docstring) and defaults."""

    _defaults = {"rho": 0.9, "momentum": 0.0, "epsilon": 1e-7, "centered": False}

    def __init__(self, learning_rate: Any = 0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False, **kwargs) -> None:
        _keras_init(self, learning_rate, kwargs, rho=float(rho), momentum=float(momentum),
                    epsilon=float(epsilon), centered=centered)

    def _make(self, params: list, lr: float) -> _TorchOptimizer:
        return optim.RMSprop(params, lr=lr, alpha=self.rho, eps=self.epsilon,
                             momentum=self.momentum, centered=self.centered,
                             eps_inside_sqrt=True)


class Adam(Optimizer):
    """Adam with Keras's defaults (epsilon=1e-7) and Keras's placement of epsilon."""

    _defaults = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "amsgrad": False}

    def __init__(self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False, **kwargs) -> None:
        _keras_init(self, learning_rate, kwargs, beta_1=float(beta_1), beta_2=float(beta_2),
                    epsilon=float(epsilon), amsgrad=amsgrad)

    def _make(self, params: list, lr: float) -> _TorchOptimizer:
        return optim.Adam(params, lr=lr, betas=(self.beta_1, self.beta_2), eps=self.epsilon,
                          amsgrad=self.amsgrad)

    def _before_step(self, group: dict) -> None:
        # Keras: w -= lr_t * m / (sqrt(v) + eps) with lr_t = lr * sqrt(1-b2^t) / (1-b1^t);
        # torch: w -= lr / (1-b1^t) * m / (sqrt(v) / sqrt(1-b2^t) + eps'). Equal for
        # eps' = eps / sqrt(1-b2^t).
        t = self.iterations + 1
        group["eps"] = self.epsilon / math.sqrt(1.0 - self.beta_2 ** t)


class AdamW(Adam):
    """Adam with decoupled weight decay (Keras default weight_decay=0.004)."""

    def __init__(self, learning_rate: Any = 0.001, weight_decay: float = 0.004,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 amsgrad: bool = False, **kwargs) -> None:
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad,
                         weight_decay=weight_decay, **kwargs)


class Adagrad(Optimizer):
    """Adagrad with Keras's defaults (initial_accumulator_value=0.1, epsilon=1e-7)."""

    _defaults = {"initial_accumulator_value": 0.1, "epsilon": 1e-7}

    def __init__(self, learning_rate: Any = 0.001, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7, **kwargs) -> None:
        _keras_init(self, learning_rate, kwargs,
                    initial_accumulator_value=float(initial_accumulator_value),
                    epsilon=float(epsilon))

    def _make(self, params: list, lr: float) -> _TorchOptimizer:
        return optim.Adagrad(params, lr=lr, eps=self.epsilon,
                             initial_accumulator_value=self.initial_accumulator_value)


def get(identifier: Any) -> Any:
    """'adam' -> Adam(); a Keras or shenjing.optim optimizer passes through."""
    if isinstance(identifier, str):
        return REGISTRY.lookup(identifier)()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, (Optimizer, _TorchOptimizer)):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    raise TypeError(f"optimizer: expected a name such as 'adam', a keras.optimizers.Optimizer "
                    f"or a shenjing.optim optimizer, got {identifier!r}")


def deserialize(config: Any, custom_objects: dict | None = None) -> Optimizer:
    return _deserialize(REGISTRY, config, custom_objects)


serialize = serialize
