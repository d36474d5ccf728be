"""What `--data` names, loaded as arrays: MNIST-style IDX sets, image folders, aclImdb-layout
review folders or archives, and plain text for a character language model.

Every loader returns a `Data`: train and test arrays, the class names and a JSON-able `meta`
(image size and channels, vocabulary, sequence length) that the checkpoint keeps, so that
`evaluate`, `predict` and `finetune` prepare inputs exactly as training did.
"""

from __future__ import annotations

import gzip
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .common import CLIError

__all__ = ["Data", "load_data", "IDX_SETS", "image_array", "encode_texts"]

IDX_SETS = ("mnist", "fashion-mnist")
TEST_FRACTION = 0.2  # held out of an image folder that has no train/ and test/ sub-folders
SPLIT_SEED = 0  # that hold-out is fixed, so evaluate sees the images train never saw


@dataclass
class Data:
    """Arrays of one data set; `task` is "image", "text" or "charlm"."""

    task: str
    spec: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    meta: dict = field(default_factory=dict)

    def limit(self, n: int | None) -> Data:
        """Keep `n` training and `n` test examples (quick runs, tests): a fixed random subset
        in the original order, so that sets sorted by class keep every class."""
        if n is not None:
            keep_train, keep_test = subsets(len(self.x_train), len(self.x_test), n)
            self.x_train, self.y_train = self.x_train[keep_train], self.y_train[keep_train]
            self.x_test, self.y_test = self.x_test[keep_test], self.y_test[keep_test]
        return self


def subsets(n_train: int, n_test: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The indices `--limit n` keeps of a training and a test set (fixed, sorted)."""
    rng = np.random.default_rng(SPLIT_SEED)
    return (np.sort(rng.permutation(n_train)[:n]), np.sort(rng.permutation(n_test)[:n]))


def image_array(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W) or (N, H, W, C) -> float32 NCHW in [0, 1]."""
    x = images.astype(np.float32) / 255.0
    return x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2).copy()


def _idx(name: str, limit: int | None) -> Data:
    from ..data.datasets import load_idx_arrays

    (xtr, ytr), (xte, yte) = (load_idx_arrays(name, train=True),
                              load_idx_arrays(name, train=False))
    if limit is not None:  # before the float conversion, which is the slow part
        keep_train, keep_test = subsets(len(xtr), len(xte), limit)
        xtr, ytr, xte, yte = xtr[keep_train], ytr[keep_train], xte[keep_test], yte[keep_test]
    classes = ([str(i) for i in range(10)] if name == "mnist" else
               ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                "Sneaker", "Bag", "Ankle boot"])
    return Data("image", name, image_array(xtr), ytr.astype(np.int64), image_array(xte),
                yte.astype(np.int64), classes, {"channels": 1, "size": 28})


def load_image(path: str | Path, channels: int, size: int) -> np.ndarray:
    """One image file as uint8 (H, W) or (H, W, 3), converted and resized as training did."""
    try:
        from PIL import Image
    except ImportError:
        raise CLIError("reading image files needs Pillow (pip install pillow)") from None
    try:
        with Image.open(path) as img:
            if img.mode == "P" and "transparency" in img.info:
                img = img.convert("RGBA")  # palette transparency: decode it before dropping it
            img = img.convert("L" if channels == 1 else "RGB")
            if img.size != (size, size):
                img = img.resize((size, size), Image.BILINEAR)
            return np.asarray(img, dtype=np.uint8)
    except OSError as err:
        raise CLIError(f"cannot read image {path}: {err}") from None


def _folder_samples(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    from ..data.datasets import IMG_EXTENSIONS

    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    samples = [(p, i) for i, c in enumerate(classes) for p in sorted((root / c).rglob("*"))
               if p.suffix.lower() in IMG_EXTENSIONS]
    return classes, samples


def _image_folder(root: Path, meta: dict | None, size: int) -> Data:
    channels = meta["channels"] if meta else 3
    size = meta["size"] if meta else size
    if (root / "train").is_dir() and (root / "test").is_dir():
        classes, train = _folder_samples(root / "train")
        test_classes, test = _folder_samples(root / "test")
        if test_classes != classes:
            raise CLIError(f"{root}: train/ and test/ hold different class folders")
    else:
        classes, samples = _folder_samples(root)
        order = np.random.default_rng(SPLIT_SEED).permutation(len(samples))
        n_test = int(round(len(samples) * TEST_FRACTION))
        test = [samples[i] for i in sorted(order[:n_test])]
        train = [samples[i] for i in sorted(order[n_test:])]
    if len(classes) < 2 or not train or not test:
        raise CLIError(f"{root}: expected an image folder with one sub-folder of images per "
                       f"class (at least two classes), found {len(classes)} classes and "
                       f"{len(train) + len(test)} images")
    def arrays(items):
        images = np.stack([load_image(p, channels, size) for p, _ in items])
        return image_array(images), np.array([c for _, c in items], dtype=np.int64)

    xtr, ytr = arrays(train)
    xte, yte = arrays(test)
    return Data("image", str(root), xtr, ytr, xte, yte, classes,
                {"channels": channels, "size": size})


def encode_texts(texts: list[str], meta: dict) -> np.ndarray:
    """Token ids (N, max_len), padded with the pad index, cut at max_len."""
    from ..data import Vocab, tokenize

    vocab = Vocab(meta["itos"])
    length = meta["max_len"]
    out = np.full((len(texts), length), vocab.pad_index, dtype=np.int64)
    for row, text in enumerate(texts):
        ids = vocab.lookup_indices(tokenize(text))[:length]
        out[row, :len(ids)] = ids
    return out


def _reviews(spec: str, meta: dict | None, max_len: int) -> Data:
    from ..data import Vocab, tokenize
    from ..data.datasets import IMDB

    try:
        train, test = IMDB(spec, split="train", download=False), IMDB(spec, split="test",
                                                                      download=False)
    except FileNotFoundError as err:
        raise CLIError(str(err)) from None
    texts_train = [train[i][0] for i in range(len(train))]
    texts_test = [test[i][0] for i in range(len(test))]
    if meta is None:
        tokens = [tokenize(t) for t in texts_train]
        longest = int(np.percentile([len(t) for t in tokens], 99))
        meta = {"itos": Vocab.build(tokens, max_size=25_000).itos,
                "max_len": max(5, min(max_len, longest))}
    return Data("text", spec, encode_texts(texts_train, meta),
                np.asarray(train.targets, dtype=np.int64), encode_texts(texts_test, meta),
                np.asarray(test.targets, dtype=np.int64), list(IMDB.classes), meta)


def read_text(path: Path) -> str:
    """A plain or gzip-compressed UTF-8 text file."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise CLIError(f"{path}: corrupt gzip file ({err})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CLIError(f"{path}: not UTF-8 text ({err})") from None


def _char_text(path: Path, meta: dict | None, seq_len: int) -> Data:
    text = read_text(path)
    if meta is None:
        meta = {"chars": "".join(sorted(set(text))), "seq_len": seq_len}
    index = {c: i for i, c in enumerate(meta["chars"])}
    unknown = sorted({c for c in text if c not in index})
    if unknown:
        raise CLIError(f"{path}: characters {''.join(unknown[:20])!r} are not in the model's "
                       "vocabulary")
    ids = np.fromiter((index[c] for c in text), dtype=np.int64, count=len(text))
    length = meta["seq_len"]
    cut = int(len(ids) * 0.9)

    def windows(part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = (len(part) - 1) // length
        if n < 1:
            raise CLIError(f"{path}: too short for sequences of {length} characters")
        return (part[:n * length].reshape(n, length),
                part[1:n * length + 1].reshape(n, length))

    xtr, ytr = windows(ids[:cut])
    xte, yte = windows(ids[cut:])  # the held-out last 10 %
    return Data("charlm", str(path), xtr, ytr, xte, yte, list(meta["chars"]), meta)


def load_data(spec: str, meta: dict | None = None, *, limit: int | None = None,
              image_size: int = 64, max_len: int = 400, seq_len: int = 100) -> Data:
    """Load what `--data` names. `meta` (from a checkpoint) fixes vocabulary and input size;
    `limit` keeps a fixed subset of that many training and test examples."""
    if spec in IDX_SETS or spec == "fashion_mnist":
        return _idx("fashion-mnist" if spec == "fashion_mnist" else spec, limit)
    path = Path(spec).expanduser()
    if not path.exists():
        raise CLIError(f"--data {spec!r}: no such file or folder; expected one of "
                       f"{', '.join(IDX_SETS)}, an image folder, an aclImdb-layout folder or "
                       "archive, or a text file")
    if path.is_dir():
        if any((path / s / "pos").is_dir() for s in ("train", "test")) or \
                any((d / "train" / "pos").is_dir() for d in path.iterdir() if d.is_dir()):
            return _reviews(str(path), meta, max_len).limit(limit)
        return _image_folder(path, meta, image_size).limit(limit)
    if tarfile.is_tarfile(path):
        return _reviews(str(path), meta, max_len).limit(limit)
    return _char_text(path, meta, seq_len).limit(limit)
