"""Post-training int8 quantization on real data: accuracy, size and latency vs float32.

Two models, each trained briefly here (bounded: about a minute each on 2 cores):
* the seed-000 CNN on MNIST (static int8 convs calibrated on 512 training images, dynamic
  int8 Linear);
* TextCNN on the Rotten Tomatoes archive through the IMDB loader (int8 embedding rows,
  static int8 convs, dynamic int8 Linear).
Each is compared with PyTorch 2.13's `torch.ao.quantization.quantize_dynamic` on the same
weights (it quantizes Linear only; PyTorch has no dynamic conv). The two int8 GEMM kernels
("int": exact integer accumulation; "dequant": dequantize weight blocks on the fly) and
NumPy's int32 matmul are timed on the layers' own shapes.

    python benchmarks/bench_quant.py [--data ../shared/data] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import shenjing as sj  # noqa: E402
from shenjing import models, nn, optim  # noqa: E402
from shenjing import quantization as Q  # noqa: E402
from shenjing.data import Vocab, tokenize  # noqa: E402
from shenjing.data.datasets import IMDB  # noqa: E402
from shenjing.data.datasets.idx import load_idx_arrays  # noqa: E402
from shenjing.nn import functional as F  # noqa: E402
from shenjing.quantization.kernels import (  # noqa: E402
    dynamic_qparams,
    qgemm,
    quantize_activation,
    quantize_weight,
)

CACHE_DIR = os.environ.get("BENCH_QUANT_CACHE")  # keep trained weights between runs


def _cache(name: str) -> str | None:
    return os.path.join(CACHE_DIR, name + ".safetensors") if CACHE_DIR else None


def batches(n: int, size: int):
    for i in range(0, n, size):
        yield slice(i, min(i + size, n))


def train(model, x: np.ndarray, y: np.ndarray, epochs: int, lr: float = 1e-3,
          batch: int = 64, cache: str | None = None) -> None:
    """Adam on cross-entropy; with `cache`, the trained weights are reused across runs."""
    if cache and os.path.exists(cache):
        model.load_state_dict(sj.load(cache))
        model.eval()
        return
    opt = optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(0)
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for s in batches(len(x), batch):
            idx = order[s]
            loss = F.cross_entropy(model(sj.tensor(x[idx])), sj.tensor(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    if cache:
        sj.save({k: v.numpy() for k, v in model.state_dict().items()}, cache)


def predict(fn, x: np.ndarray, batch: int = 256) -> np.ndarray:
    with sj.no_grad():
        return np.concatenate([np.asarray(fn(x[s])) for s in batches(len(x), batch)])


def latency(fn, x: np.ndarray, repeats: int = 5) -> float:
    """Median seconds of one call on batch x (after a warm-up)."""
    fn(x)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def sj_fn(model):
    return lambda a: model(sj.tensor(a)).numpy()


def torch_fn(model):
    import torch
    def run(a):
        with torch.no_grad():
            return model(torch.from_numpy(a)).numpy()
    return run


def torch_size(model) -> int:
    """Bytes of a torch model's state dict, int8 packed weights included."""
    import io

    import torch
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes


def to_torch(model, torch_model):
    import torch
    state = {k: torch.from_numpy(np.array(v.numpy())) for k, v in model.state_dict().items()}
    torch_model.load_state_dict(state)
    return torch_model.eval()


def report(name: str, y: np.ndarray, rows: list) -> list:
    lines = [f"### {name}", "",
             "| variant | accuracy | Δ points | size (KB) | size ratio | latency (ms) | "
             "latency ratio |", "|---|---|---|---|---|---|---|"]
    base = rows[0]
    for label, pred, size, lat in rows:
        acc = 100 * float(np.mean(pred.argmax(1) == y))
        acc0 = 100 * float(np.mean(base[1].argmax(1) == y))
        lines.append(f"| {label} | {acc:.2f} % | {acc - acc0:+.2f} | {size / 1024:.0f} | "
                     f"{size / base[2]:.3f}× | {1000 * lat:.2f} | {lat / base[3]:.2f}× |")
    print("\n".join(lines))
    return lines


def torch_rows(model, torch_model, x, batch_x, label: str) -> list:
    import torch
    tm = to_torch(model, torch_model)
    tq = torch.ao.quantization.quantize_dynamic(tm, {torch.nn.Linear}, dtype=torch.qint8)
    out = []
    for name, m in ((f"PyTorch float32 {label}", tm),
                    (f"PyTorch quantize_dynamic (Linear) {label}", tq)):
        out.append((name, predict(torch_fn(m), x), torch_size(m), latency(torch_fn(m), batch_x)))
    return out


# ----------------------------------------------------------------------------- MNIST


def mnist(data: str, quick: bool) -> list:
    xtr, ytr = load_idx_arrays("mnist", train=True, root=data, download=False)
    xte, yte = load_idx_arrays("mnist", train=False, root=data, download=False)
    prep = lambda a: ((a.astype(np.float32) / 255 - 0.1307) / 0.3081)[:, None]  # noqa: E731
    n_train = 12_000 if quick else 30_000
    xtr, ytr, xte = prep(xtr[:n_train]), ytr[:n_train].astype(np.int64), prep(xte)
    sj.manual_seed(0)
    model = models.seed000_cnn()
    t = time.perf_counter()
    train(model, xtr, ytr, epochs=1, cache=_cache(f"mnist{n_train}"))
    print(f"MNIST: trained seed000-cnn on {n_train} images, 1 epoch, "
          f"{time.perf_counter() - t:.0f} s")
    calib = [sj.tensor(xtr[s]) for s in batches(512, 128)]
    q = Q.quantize_static(model, calib, dynamic_spec={nn.Linear})
    batch_x = xte[:256]
    rows = [("shenjing float32", predict(sj_fn(model), xte), Q.model_size_bytes(model),
             latency(sj_fn(model), batch_x))]
    for kernel in Q.KERNELS:
        Q.set_kernel(q, kernel)
        rows.append((f"shenjing int8 ({kernel} kernel)", predict(sj_fn(q), xte),
                     Q.model_size_bytes(q), latency(sj_fn(q), batch_x)))
    try:
        import torch  # noqa: F401
        class Torch000(torch.nn.Sequential):
            def __init__(self):
                super().__init__(torch.nn.Conv2d(1, 32, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                 torch.nn.Conv2d(32, 64, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                 torch.nn.Flatten(), torch.nn.Linear(1600, 10))
        rows += torch_rows(model, Torch000(), xte, batch_x, "")
    except ImportError:
        pass
    return report("seed-000 CNN, MNIST test set (10,000), latency of a 256-image batch",
                  yte, rows) + [""] + kernel_table(q, batch_x)


def kernel_table(q, batch_x: np.ndarray) -> list:
    """Time each GEMM kernel on the GEMM shapes of the quantized model's layers."""
    shapes = []
    x = sj.tensor(batch_x)
    for m in q.modules():
        if isinstance(m, (Q.QuantizedConv2d, Q.QuantizedConv1d)):
            k = int(np.prod(m.weight_int8.shape[1:]))
            shapes.append((type(m).__name__, m.weight_int8.shape[0], k))
        elif isinstance(m, Q.DynamicQuantizedLinear):
            shapes.append(("DynamicQuantizedLinear", m.out_features, m.in_features))
    del x
    rng = np.random.default_rng(0)
    lines = ["| layer GEMM (M×K·K×O) | int (exact, BLAS) ms | dequant blocks ms | "
             "NumPy int32 ms |", "|---|---|---|---|"]
    for name, o, k in shapes:
        m = 256 * 100 if "Conv" in name else 256  # conv: one row per output position
        m = min(m, 20_000)
        a = rng.standard_normal((m, k)).astype(np.float32)
        s, z = dynamic_qparams(a)
        aq = quantize_activation(a, s, z)
        wq, ws = quantize_weight(rng.standard_normal((o, k)).astype(np.float32))
        t = {kern: latency(lambda _, k=kern, a=(aq, s, z, wq, ws): qgemm(*a, None, k), None, 3)
             for kern in ("int", "dequant", "int32-numpy")}
        lines.append(f"| {name} {m}×{k}·{k}×{o} | {1000 * t['int']:.2f} | "
                     f"{1000 * t['dequant']:.2f} | {1000 * t['int32-numpy']:.2f} |")
    print("\n".join(lines))
    return lines


# ----------------------------------------------------------------------------- TextCNN


def encode(texts: list, vocab: Vocab, length: int) -> np.ndarray:
    out = np.full((len(texts), length), vocab.pad_index or 0, dtype=np.int64)
    for i, t in enumerate(texts):
        ids = vocab.lookup_indices(tokenize(t))[:length]
        out[i, :len(ids)] = ids
    return out


def textcnn(data: str, quick: bool) -> list:
    archive = os.path.join(data, "rt_polarity.tar.gz")
    train_set, test_set = IMDB(archive=archive, split="train"), IMDB(archive=archive,
                                                                      split="test")
    texts = [train_set[i] for i in range(len(train_set))]
    tests = [test_set[i] for i in range(len(test_set))]
    vocab = Vocab.build((tokenize(t) for t, _ in texts), max_size=25_000)
    length = 40
    xtr = encode([t for t, _ in texts], vocab, length)
    ytr = np.asarray([y for _, y in texts], dtype=np.int64)
    xte = encode([t for t, _ in tests], vocab, length)
    yte = np.asarray([y for _, y in tests], dtype=np.int64)
    sj.manual_seed(0)
    model = models.TextCNN(len(vocab), embed_dim=100, n_filters=100,
                           padding_idx=vocab.pad_index)
    t = time.perf_counter()
    train(model, xtr, ytr, epochs=1 if quick else 2,
          cache=_cache(f"textcnn{len(vocab)}{'q' if quick else ''}"))
    print(f"TextCNN: trained on {len(xtr)} reviews, {time.perf_counter() - t:.0f} s")
    calib = [sj.tensor(xtr[s]) for s in batches(512, 128)]
    q = Q.quantize_static(model, calib, dynamic_spec={nn.Linear, nn.Embedding})
    batch_x = xte[:256]
    rows = [("shenjing float32", predict(sj_fn(model), xte), Q.model_size_bytes(model),
             latency(sj_fn(model), batch_x))]
    for kernel in Q.KERNELS:
        Q.set_kernel(q, kernel)
        rows.append((f"shenjing int8 ({kernel} kernel)", predict(sj_fn(q), xte),
                     Q.model_size_bytes(q), latency(sj_fn(q), batch_x)))
    try:
        import torch

        class TorchTextCNN(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.embedding = torch.nn.Embedding(len(vocab), 100)
                self.convs = torch.nn.ModuleList([torch.nn.Conv2d(1, 100, (k, 100))
                                                  for k in (3, 4, 5)])
                self.fc = torch.nn.Linear(300, 2)
                self.dropout = torch.nn.Dropout(0.5)

            def forward(self, text):
                e = self.embedding(text).unsqueeze(1)
                pooled = [torch.relu(c(e)).squeeze(3).amax(dim=2) for c in self.convs]
                return self.fc(self.dropout(torch.cat(pooled, dim=1)))
        rows += torch_rows(model, TorchTextCNN(), xte, batch_x, "")
    except ImportError:
        pass
    return report("TextCNN, Rotten Tomatoes test split (2,550), latency of a 256-review batch",
                  yte, rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.environ.get("SHENJING_DATA", "../shared/data"))
    p.add_argument("--quick", action="store_true", help="less training data (smoke run)")
    p.add_argument("--only", choices=("mnist", "textcnn"), default=None)
    args = p.parse_args()
    lines = []
    if args.only in (None, "mnist"):
        lines += mnist(args.data, args.quick) + [""]
    if args.only in (None, "textcnn"):
        lines += textcnn(args.data, args.quick)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
