"""The zoo: the seeds' models, PyTorch style (NCHW), with PyTorch's parameter names.

One module per family: `vision` (seed CNNs, MLP, perceptron), `alexnet` (AlexNet, ResNet),
`text` (TextCNN, TransformerClassifier), `recurrent` (CharLSTM, SequenceRegressor), plus
`transfer` (freezing, new heads, discriminative learning rates, loading PyTorch weights,
incremental learning) and `keras_zoo` (the seeds' Keras models, `seed000_cnn_keras()` etc.,
with weight copies to and from the models here).

`get_model(name, **kw)` builds a model by the names the command line and benchmarks use;
`TASKS[name]` says what data it takes: "image" (N, C, H, W) -> class logits, "text" (N, L)
token ids -> class logits, "charlm" (N, L) character ids -> next-character logits, "binary"
(the perceptron), "sequence" (N, T, F) -> (N, T, F').
"""

from __future__ import annotations

from collections.abc import Callable

from .. import nn
from .alexnet import AlexNet, BasicBlock, ResNet
from .keras_zoo import (
    KERAS_MODELS,
    copy_keras_weights,
    copy_torch_weights,
    mlp_keras,
    seed000_cnn_keras,
    seed003_cnn_keras,
)
from .recurrent import CharLSTM, SequenceRegressor, sequence_mse
from .text import TextCNN, TransformerClassifier
from .transfer import (
    freeze,
    load_torch_safetensors,
    param_groups,
    partial_fit,
    replace_head,
    trainable_parameters,
    unfreeze,
)
from .vision import MLP, Perceptron, mlp, seed000_cnn, seed003_cnn

__all__ = ["seed000_cnn", "seed003_cnn", "MLP", "mlp", "Perceptron", "AlexNet", "BasicBlock",
           "ResNet", "TextCNN", "TransformerClassifier", "CharLSTM", "SequenceRegressor",
           "sequence_mse", "freeze", "unfreeze", "replace_head", "param_groups",
           "trainable_parameters", "load_torch_safetensors", "partial_fit",
           "get_model", "MODELS", "TASKS", "seed000_cnn_keras", "seed003_cnn_keras",
           "mlp_keras", "copy_torch_weights", "copy_keras_weights", "KERAS_MODELS"]

MODELS: dict[str, Callable[..., nn.Module]] = {
    "seed000-cnn": seed000_cnn,
    "seed003-cnn": seed003_cnn,
    "mlp": MLP,
    "perceptron": Perceptron,
    "alexnet": AlexNet,
    "resnet": ResNet,
    "textcnn": TextCNN,
    "transformer": TransformerClassifier,
    "char-lstm": CharLSTM,
    "sequence-regressor": SequenceRegressor,
}

TASKS: dict[str, str] = {
    "seed000-cnn": "image", "seed003-cnn": "image", "mlp": "image", "alexnet": "image",
    "resnet": "image", "perceptron": "binary", "textcnn": "text", "transformer": "text",
    "char-lstm": "charlm",
    "sequence-regressor": "sequence",
}


def get_model(name: str, **kwargs) -> nn.Module:
    """Build the zoo model `name` (see `MODELS`) with the given constructor arguments."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    try:
        return MODELS[name](**kwargs)
    except TypeError as err:
        raise TypeError(f"model {name!r}: {err}") from None
