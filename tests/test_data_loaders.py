"""Data-set loaders on real data (MNIST, Fashion-MNIST, the emoji ImageFolder, rt_polarity in the
aclImdb layout) and on corrupted inputs built in tmp_path: every failure names what was wrong,
and nothing is written outside the cache."""

from __future__ import annotations

import collections
import dataclasses
import gzip
import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pytest

from shenjing.data import DataLoader
from shenjing.data import transforms as T
from shenjing.data._files import MARKER_NAME, UnsafeArchiveError
from shenjing.data.datasets import IMDB, MNIST, FashionMNIST, ImageFolder, load_idx_arrays
from shenjing.data.datasets import idx as idx_module
from shenjing.data.text import BucketBatchSampler, PadCollate, Vocab, tokenize

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
MNIST_DIR = SHARED / "mnist"
EMOJI = SHARED / "emoji"
RT_POLARITY = SHARED / "rt_polarity.tar.gz"
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")

needs_shared = pytest.mark.skipif(not MNIST_DIR.is_dir(), reason="shared data not present")
Image = pytest.importorskip("PIL.Image")


def tree(root: Path) -> set[str]:
    """Every path under root, relative, to compare the file system before and after."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def read_gz_idx(path: Path, header: int) -> np.ndarray:
    """Independent reader for the test: skip the header, take the bytes."""
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=header)


def write_idx(path: Path, array: np.ndarray, magic: int | None = None, cut: int = 0) -> Path:
    """A raw IDX file of uint8 `array`; `magic` overrides the header, `cut` drops tail bytes."""
    magic = (0x0800 | array.ndim) if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: len(data) - cut])
    return path


# ---------------------------------------------------------------------------- MNIST


@needs_shared
def test_mnist_test_split_matches_an_independent_read(monkeypatch):
    monkeypatch.setenv("SHENJING_DATA", str(SHARED))
    ds = MNIST(train=False, download=False)
    assert ds.data.shape == (10000, 28, 28) and ds.data.dtype == np.uint8
    assert ds.targets.dtype == np.int64 and len(ds) == 10000
    labels = read_gz_idx(MNIST_DIR / "t10k-labels-idx1-ubyte.gz", 8)
    images = read_gz_idx(MNIST_DIR / "t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
    np.testing.assert_array_equal(ds.targets, labels)
    np.testing.assert_array_equal(ds.data[:300], images[:300])
    assert ds.targets[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    # MNIST's well-known test-set statistics: mean 0.1325, std 0.3105 of pixels scaled to [0,1].
    scaled = ds.data.astype(np.float64) / 255
    assert abs(scaled.mean() - 0.1325) < 5e-4 and abs(scaled.std() - 0.3105) < 5e-4
    image, label = ds[0]
    assert isinstance(image, Image.Image) and image.mode == "L" and image.size == (28, 28)
    assert label == 7 and type(label) is int
    np.testing.assert_array_equal(np.asarray(image), images[0])
    assert ds.classes[7] == "7 - seven"


@needs_shared
def test_mnist_train_labels_and_transform(monkeypatch):
    monkeypatch.setenv("SHENJING_DATA", str(SHARED))
    ds = MNIST(train=True, transform=T.ToTensor(), target_transform=lambda y: y + 100)
    counts = np.bincount(ds.targets, minlength=10).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    x, y = ds[0]
    assert x.shape == (1, 28, 28) and x.dtype == np.float32 and y == 105
    np.testing.assert_allclose(x.numpy()[0], ds.data[0] / 255.0, rtol=1e-6)
    images, labels = load_idx_arrays("mnist", train=True)
    np.testing.assert_array_equal(images[:500], ds.data[:500])
    assert labels.dtype == np.int64 and len(labels) == 60000


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_found_in_debian_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("SHENJING_DATA", str(tmp_path))  # empty cache: falls through to Debian
    ds = FashionMNIST(train=False, download=False)
    assert ds.data.shape == (10000, 28, 28)
    assert ds.targets[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert np.bincount(ds.targets).tolist() == [1000] * 10
    assert ds.classes[9] == "Ankle boot"
    assert tree(tmp_path) == set()


def test_missing_files_say_where_they_looked_and_how_to_get_them(monkeypatch, tmp_path):
    monkeypatch.setenv("SHENJING_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        MNIST(train=True, download=False)
    message = str(err.value)
    assert "train-images-idx3-ubyte" in message and str(tmp_path / "mnist") in message
    assert "SHENJING_DATA" in message and "download=False" in message
    spec = dataclasses.replace(idx_module.IDX_SETS["fashion-mnist"], system_dirs=())
    monkeypatch.setitem(idx_module.IDX_SETS, "fashion-mnist", spec)
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        FashionMNIST(train=False, download=False)
    assert tree(tmp_path) == set()


def test_download_failure_is_explained_and_leaves_no_file(monkeypatch, tmp_path):
    spec = dataclasses.replace(idx_module.IDX_SETS["mnist"], mirrors=("http://127.0.0.1:9/",))
    monkeypatch.setitem(idx_module.IDX_SETS, "mnist", spec)
    with pytest.raises(FileNotFoundError) as err:
        MNIST(root=tmp_path, train=False)
    assert "could not download http://127.0.0.1:9/t10k-images-idx3-ubyte.gz" in str(err.value)
    assert [p for p in tree(tmp_path) if p != "mnist"] == []


@needs_shared
def test_download_checks_md5_and_writes_atomically(monkeypatch, tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(MNIST_DIR / name, mirror / name)
    spec = dataclasses.replace(idx_module.IDX_SETS["mnist"], mirrors=(mirror.as_uri() + "/",))
    monkeypatch.setitem(idx_module.IDX_SETS, "mnist", spec)
    ds = MNIST(root=tmp_path / "root", train=False)
    assert len(ds) == 10000
    assert sorted(os.listdir(tmp_path / "root" / "mnist")) == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    # A mirror serving other bytes: rejected by the MD5 of the uncompressed data, nothing kept.
    (mirror / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\0\0\x08\x01" + bytes(4)))
    with pytest.raises(FileNotFoundError, match="rejected it: MD5 of the uncompressed bytes"):
        MNIST(root=tmp_path / "other", train=False)
    assert sorted(os.listdir(tmp_path / "other" / "mnist")) == ["t10k-images-idx3-ubyte.gz"]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: write_idx(d / "t10k-images-idx3-ubyte", np.zeros((10, 28, 28)), cut=6840),
         r"t10k-images-idx3-ubyte is truncated: expected 7840 bytes of image data for shape "
         r"\(10, 28, 28\), got 1000"),
        (lambda d: write_idx(d / "t10k-images-idx3-ubyte", np.zeros((10, 28, 28)),
                             magic=0x801),
         r"magic number 0x00000801, expected 0x00000803 \(an IDX file of images"),
        (lambda d: (d / "t10k-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(np.arange(5000, dtype=np.uint8).tobytes())[:-12]),
         r"t10k-images-idx3-ubyte.gz is a truncated or corrupted gzip file"),
        (lambda d: write_idx(d / "t10k-labels-idx1-ubyte", np.zeros(9)),
         r"holds 9 labels but image file .* holds 10 images"),
    ],
    ids=["truncated", "wrong-magic", "truncated-gzip", "label-count"],
)
def test_corrupted_idx_files_raise_naming_the_file(tmp_path, make, message):
    folder = tmp_path / "mnist"
    write_idx(folder / "t10k-images-idx3-ubyte", np.zeros((10, 28, 28)))
    write_idx(folder / "t10k-labels-idx1-ubyte", np.zeros(10))
    make(folder)
    if (folder / "t10k-images-idx3-ubyte.gz").exists():
        (folder / "t10k-images-idx3-ubyte").unlink()
    before = tree(tmp_path)
    with pytest.raises(ValueError, match=message):
        MNIST(root=tmp_path, train=False, download=False)
    assert tree(tmp_path) == before


def test_structurally_valid_file_with_wrong_content_fails_the_checksum(tmp_path):
    write_idx(tmp_path / "mnist" / "t10k-images-idx3-ubyte", np.zeros((10, 28, 28)))
    write_idx(tmp_path / "mnist" / "t10k-labels-idx1-ubyte", np.zeros(10))
    with pytest.raises(ValueError, match="corrupted: MD5 of its uncompressed bytes is .*, "
                                         "expected 2646ac647ad5339dbf082846283269ea"):
        load_idx_arrays("mnist", train=False, root=tmp_path, download=False)


# ------------------------------------------------------------------------- ImageFolder

EMOJI_COUNTS = {"Activities": 85, "Animals_and_Nature": 159, "Flags": 270, "Food_and_Drink": 131,
                "Objects": 264, "People_and_Body": 386, "Smileys_and_Emotion": 169,
                "Symbols": 224, "Travel_and_Places": 218}


@pytest.mark.skipif(not EMOJI.is_dir(), reason="shared data not present")
def test_imagefolder_on_the_emoji_set():
    ds = ImageFolder(EMOJI)
    assert ds.classes == sorted(EMOJI_COUNTS) and len(ds) == 1906
    assert ds.class_to_idx == {name: i for i, name in enumerate(sorted(EMOJI_COUNTS))}
    counts = collections.Counter(ds.classes[t] for t in ds.targets)
    assert counts == EMOJI_COUNTS
    assert ds.samples[0][0].endswith(".png") and "Activities" in ds.samples[0][0]
    modes = collections.Counter(Image.open(path).mode for path, _ in ds.samples)
    assert {"RGBA", "LA", "P"} <= set(modes)  # the set really needs converting
    odd = [i for i, (path, _) in enumerate(ds.samples) if Image.open(path).mode != "RGBA"]
    for i in odd + list(range(0, len(ds), 97)):
        image, label = ds[i]
        assert image.mode == "RGB" and image.size == (64, 64) and label == ds.targets[i]
    la = odd[0]
    gray = np.asarray(Image.open(ds.samples[la][0]).convert("L"))
    rgb = np.asarray(ds[la][0])
    np.testing.assert_array_equal(rgb[..., 0], gray)  # LA -> RGB repeats the luminance


@pytest.mark.skipif(not EMOJI.is_dir(), reason="shared data not present")
def test_imagefolder_through_the_seed_pipeline():
    ds = ImageFolder(EMOJI, transform=T.Compose([T.Resize(40), T.ToTensor()]))
    loader = DataLoader(ds, batch_size=64, shuffle=True, num_workers=2, seed=0)
    images, labels = next(iter(loader))
    assert images.shape == (64, 3, 40, 40) and images.dtype == np.float32
    assert labels.dtype == np.int64 and len(loader) == 30
    assert 0.0 <= float(images.numpy().min()) and float(images.numpy().max()) <= 1.0


def test_unreadable_images_are_named(tmp_path):
    good = Image.new("RGBA", (8, 8), (255, 0, 0, 128))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    good.save(tmp_path / "a" / "0.png")
    (tmp_path / "a" / "1.png").write_bytes(b"this is not a png")
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (0, 200, 0)).save(buffer, "PNG")
    (tmp_path / "b" / "2.png").write_bytes(buffer.getvalue()[:60])  # truncated PNG
    (tmp_path / "b" / "notes.txt").write_text("skipped: not an image extension")
    ds = ImageFolder(tmp_path)
    assert [Path(p).name for p, _ in ds.samples] == ["0.png", "1.png", "2.png"]
    assert ds[0][0].mode == "RGB" and ds[0][0].getpixel((0, 0)) == (255, 0, 0)
    for i, name in ((1, "1.png"), (2, "2.png")):
        with pytest.raises(OSError, match=f"cannot read image file .*{name}"):
            ds[i]
    loader = DataLoader(ds, batch_size=1, num_workers=2,
                        collate_fn=lambda batch: batch)
    with pytest.raises(OSError, match=r"dataset index 1 .*cannot read image file .*1\.png"):
        list(loader)


def test_imagefolder_empty_class_and_missing_root(tmp_path):
    (tmp_path / "cats").mkdir()
    (tmp_path / "dogs").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "cats" / "x.jpg")
    with pytest.raises(FileNotFoundError, match="no valid file for the classes dogs"):
        ImageFolder(tmp_path)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        ImageFolder(tmp_path / "nowhere")


# -------------------------------------------------------------------------------- IMDB


@pytest.fixture(scope="module")
def rt_cache(tmp_path_factory):
    """A cache for the extracted archive (12,759 files), on tmpfs where there is one: creating
    that many files on a busy VM disk can take 20 s, on tmpfs well under one."""
    if not RT_POLARITY.is_file():
        pytest.skip("shared data not present")
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        cache = Path(tempfile.mkdtemp(prefix="shenjing-test-cache-", dir=shm))
    else:
        cache = tmp_path_factory.mktemp("cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("SHENJING_DATA", str(cache))
    yield cache
    mp.undo()
    shutil.rmtree(cache, ignore_errors=True)


def test_imdb_reads_the_rt_polarity_archive(rt_cache):
    train = IMDB(split="train", archive=RT_POLARITY)
    test = IMDB(split="test", archive=RT_POLARITY)
    assert collections.Counter(train.targets) == {1: 5924, 0: 4278}
    assert collections.Counter(test.targets) == {1: 1444, 0: 1106}
    assert train.root == rt_cache / "imdb" / "rt_polarity" / "rt_polarity"
    text, label = train[0]
    first = Path(train.samples[0][0])
    assert isinstance(text, str) and label == 0 and first.parent.name == "neg"
    with tarfile.open(RT_POLARITY) as tf:
        names = [m.name for m in tf.getmembers() if m.name.startswith("rt_polarity/train/neg/")]
        expected = tf.extractfile(f"rt_polarity/train/neg/{first.name}").read().decode()
    assert text == expected
    ids = sorted(int(Path(n).stem) for n in names)
    assert first.name == f"{ids[0]}.txt"  # numeric order, not string order
    pos = train.targets.index(1)
    assert "/train/pos/" in train.samples[pos][0] and train[pos][1] == 1
    # The extraction is reused while the archive is unchanged, and readable as a folder.
    marker = rt_cache / "imdb" / "rt_polarity" / MARKER_NAME
    stamp = marker.stat().st_mtime_ns
    again = IMDB(rt_cache / "imdb" / "rt_polarity", split="test", transform=str.upper)
    assert marker.stat().st_mtime_ns == stamp and len(again) == 2550
    assert again[0][0] == test[0][0].upper()
    assert sorted(os.listdir(rt_cache / "imdb")) == ["rt_polarity"]


def test_imdb_textcnn_pipeline(rt_cache):
    """The seed's torchtext flow: tokenize, 25k vocabulary, bucketed padded batches."""
    raw = IMDB(archive=RT_POLARITY, split="test")
    docs = [tokenize(raw[i][0]) for i in range(len(raw))]
    counts = collections.Counter(t for doc in docs for t in doc)
    vocab = Vocab.build(docs, max_size=25_000)
    assert len(vocab) == len(counts) + 2  # under 25,000 distinct tokens: all kept
    assert vocab.itos[2] == max(counts, key=counts.get)
    assert [counts[t] for t in vocab.itos[2:]] == sorted(counts.values(), reverse=True)
    assert len(Vocab.build(docs, max_size=5000)) == 5002
    encoded = IMDB(archive=RT_POLARITY, split="test", transform=lambda text: vocab(tokenize(text)))
    lengths = [len(doc) for doc in docs]
    loader = DataLoader(encoded, batch_sampler=BucketBatchSampler(lengths, 64, seed=0),
                        collate_fn=PadCollate(vocab.pad_index, min_len=5), num_workers=2)
    seen = 0
    for tokens, lens, labels in loader:
        assert tokens.shape[1] == max(5, int(lens.numpy().max()))
        assert tokens.dtype == np.int64 and set(labels.numpy().tolist()) <= {0, 1}
        seen += len(labels.numpy())
    assert seen == len(raw) == 2550 and len(loader) == 40


def make_tar(path: Path, members: list[tuple[str, str, object]]) -> Path:
    """A .tar.gz with (kind, name, payload) members: file/bytes, dir, symlink/target, ..."""
    with tarfile.open(path, "w:gz") as tf:
        for kind, name, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(payload)
                tf.addfile(info, io.BytesIO(payload))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
                         "hardlink": tarfile.LNKTYPE, "chardev": tarfile.CHRTYPE}[kind]
            if kind in ("symlink", "hardlink"):
                info.linkname = payload
            tf.addfile(info)
    return path


GOOD = [("dir", "set/train/pos", None), ("dir", "set/train/neg", None),
        ("file", "set/train/pos/1.txt", b"great"), ("file", "set/train/neg/2.txt", b"awful")]


def test_imdb_from_a_small_good_archive(monkeypatch, tmp_path):
    monkeypatch.setenv("SHENJING_DATA", str(tmp_path / "cache"))
    ds = IMDB(make_tar(tmp_path / "set.tar.gz", GOOD), split="train")
    assert [ds[i] for i in range(len(ds))] == [("awful", 0), ("great", 1)]
    with pytest.raises(FileNotFoundError, match="test/pos/\\*.txt and test/neg/\\*.txt"):
        IMDB(archive=tmp_path / "set.tar.gz", split="test")


@pytest.mark.parametrize(
    "bad, message",
    [
        (("file", "set/../../escaped.txt", b"x"), "contains a '..' component"),
        (("file", "/tmp/absolute-escape.txt", b"x"), "has an absolute path"),
        (("symlink", "set/train/pos/link.txt", "../../../../outside.txt"),
         "is a symbolic link to '../../../../outside.txt'"),
        (("hardlink", "set/train/pos/hard.txt", "/etc/passwd"), "is a hard link"),
        (("chardev", "set/train/pos/dev", None), "is a device, FIFO or other special file"),
    ],
    ids=["dotdot", "absolute", "symlink", "hardlink", "device"],
)
def test_unsafe_archives_are_refused_before_writing(monkeypatch, tmp_path, bad, message):
    cache = tmp_path / "cache"
    monkeypatch.setenv("SHENJING_DATA", str(cache))
    archive = make_tar(tmp_path / "evil.tar.gz", [*GOOD, bad])
    before = tree(tmp_path)
    with pytest.raises(UnsafeArchiveError, match=f"member '{bad[1]}' {message}"):
        IMDB(archive=archive)
    after = tree(tmp_path) - before
    assert after <= {"cache", "cache/imdb"}  # no extraction, no partial folder, no escapee
    assert not Path("/tmp/absolute-escape.txt").exists()
    assert not (tmp_path.parent / "escaped.txt").exists()


def test_imdb_without_data_explains(monkeypatch, tmp_path):
    monkeypatch.setenv("SHENJING_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="aclImdb_v1.tar.gz.*download=False"):
        IMDB(download=False)
    with pytest.raises(FileNotFoundError, match="does not hold train/pos"):
        IMDB(root=tmp_path)
    with pytest.raises(ValueError, match="split should be 'train' or 'test'"):
        IMDB(root=tmp_path, split="valid")
