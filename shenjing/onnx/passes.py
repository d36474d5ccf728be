"""Graph rewrites applied after translation."""

from __future__ import annotations

import numpy as np

__all__ = ["fold_batch_norm"]


def fold_batch_norm(nodes: list, initializers: dict) -> int:
    """Fold each eval-mode BatchNormalization that directly follows a Conv (whose output
    nothing else reads) into that Conv's weight and bias; returns how many were folded.

    w' = w · γ/√(σ² + ε) per output channel, b' = (b − μ) · γ/√(σ² + ε) + β.
    """
    readers: dict[str, int] = {}
    for n in nodes:
        for name in n.input:
            readers[name] = readers.get(name, 0) + 1
    producer = {out: n for n in nodes for out in n.output}
    folded = 0
    for bn in list(nodes):
        if bn.op_type != "BatchNormalization" or len(bn.output) != 1:
            continue
        conv = producer.get(bn.input[0])
        if conv is None or conv.op_type != "Conv" or readers.get(bn.input[0], 0) != 1:
            continue
        if not all(name in initializers for name in list(bn.input[1:5]) + list(conv.input[1:])):
            continue
        gamma, beta, mean, var = (initializers[name] for name in bn.input[1:5])
        eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
        w = initializers[conv.input[1]]
        b = initializers[conv.input[2]] if len(conv.input) > 2 else np.zeros(w.shape[0], w.dtype)
        scale = (gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps))
        w_new = (w * scale.reshape((-1,) + (1,) * (w.ndim - 1))).astype(w.dtype)
        b_new = ((b - mean) * scale + beta).astype(w.dtype)
        w_name, b_name = bn.output[0] + ".folded_weight", bn.output[0] + ".folded_bias"
        initializers[w_name], initializers[b_name] = w_new, b_new
        del conv.input[1:]
        conv.input.extend([w_name, b_name])
        conv.output[0] = bn.output[0]
        nodes.remove(bn)
        folded += 1
    return folded
