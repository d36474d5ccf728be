"""Data sets, samplers, DataLoader, collate, transforms and preprocessing, checked against
hand-computed NumPy results and (for lengths and resampling) torch as an oracle."""

from __future__ import annotations

import collections

import numpy as np
import pytest

import shenjing as sj
from shenjing.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    RandomSampler,
    Subset,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
    random_split,
)
from shenjing.data import transforms as T
from shenjing.data.preprocessing import (
    mean_normalize,
    min_max_scale,
    standardize,
    to_categorical,
    train_test_split,
)

Image = pytest.importorskip("PIL.Image")


class Squares(Dataset):
    """Sample i is (i as float32 array, i*i), optionally with a random transform on the array."""

    def __init__(self, n: int, transform=None, fail_at: int | None = None) -> None:
        self.n, self.transform, self.fail_at = n, transform, fail_at

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        if i == self.fail_at:
            raise ValueError(f"sample {i} is broken")
        x = np.full((2, 3), i, dtype=np.float32)
        if self.transform is not None:
            x = self.transform(x)
        return x, i * i


def noise(x: np.ndarray) -> np.ndarray:
    """A random transform drawing from the transform stream, like the real random transforms."""
    return x + T.get_transform_rng().normal(size=x.shape).astype(np.float32)


def batches(loader) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(x.numpy().copy(), y.numpy().copy()) for x, y in loader]


# ---------------------------------------------------------------------------- data sets


def test_tensor_concat_subset():
    x = sj.tensor(np.arange(12, dtype=np.float32).reshape(6, 2))
    y = np.arange(6)
    ds = TensorDataset(x, y)
    assert len(ds) == 6 and ds[2][0].tolist() == [4.0, 5.0] and ds[2][1] == 2
    with pytest.raises(ValueError, match=r"same first dimension, got sizes \[6, 5\]"):
        TensorDataset(x, y[:5])
    both = ds + Squares(3)
    assert isinstance(both, ConcatDataset) and len(both) == 9
    assert both[7][1] == 1 and both[-1][1] == 4 and both[5][1] == 5
    with pytest.raises(IndexError):
        both[9]
    sub = Subset(ds, [5, 0])
    assert len(sub) == 2 and sub[0][1] == 5 and sub[1][1] == 0


@pytest.mark.filterwarnings("ignore:Length of split at index")
@pytest.mark.parametrize("lengths", [[3, 7], [0.3, 0.7], [0.33, 0.33, 0.34], [0.5, 0.5, 0.0],
                                     [1 / 3] * 3])
def test_random_split_lengths_follow_torch(lengths):
    torch = pytest.importorskip("torch")
    expected = [len(s) for s in torch.utils.data.random_split(range(10), lengths)]
    parts = random_split(list(range(10)), lengths, generator=sj.Generator(0))
    assert [len(p) for p in parts] == expected
    assert sorted(i for p in parts for i in p.indices) == list(range(10))


def test_random_split_is_seeded_and_checked():
    a = random_split(range(20), [0.5, 0.5], generator=sj.Generator(3))
    b = random_split(range(20), [0.5, 0.5], generator=sj.Generator(3))
    assert a[0].indices == b[0].indices and a[0].indices != list(range(10))
    with pytest.raises(ValueError, match="sum of lengths 9 does not equal the data set's length"):
        random_split(range(10), [4, 5])
    with pytest.raises(ValueError, match="fractions must lie in"):
        random_split(range(10), [0.5, 0.6])


def test_samplers():
    rs = list(RandomSampler(range(10), generator=sj.Generator(1)))
    assert sorted(rs) == list(range(10)) and rs != list(range(10))
    assert len(list(RandomSampler(range(4), num_samples=10, generator=sj.Generator(1)))) == 10
    w = list(WeightedRandomSampler([0, 0, 1, 0], 5, generator=sj.Generator(0)))
    assert w == [2] * 5
    assert list(BatchSampler(range(7), 3, drop_last=False)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(BatchSampler(range(7), 3, drop_last=True)) == 2
    with pytest.raises(ValueError, match="batch_size should be a positive integer, got 0"):
        BatchSampler(range(7), 0, False)


# ---------------------------------------------------------------------------- DataLoader


def test_len_drop_last_and_order():
    ds = Squares(10)
    loader = DataLoader(ds, batch_size=4)
    out = batches(loader)
    assert len(loader) == 3 and [len(y) for _, y in out] == [4, 4, 2]
    assert out[2][1].tolist() == [64, 81] and out[0][0].shape == (4, 2, 3)
    assert out[0][0].dtype == np.float32 and out[0][1].dtype == np.int64
    dropped = DataLoader(ds, batch_size=4, drop_last=True)
    assert len(dropped) == 2 and len(list(dropped)) == 2


@pytest.mark.parametrize("workers", [2, 3])
def test_same_batches_for_a_seed_whatever_num_workers(workers):
    ds = Squares(37, transform=noise)
    reference = batches(DataLoader(ds, batch_size=5, shuffle=True, seed=7))
    parallel = batches(DataLoader(ds, batch_size=5, shuffle=True, seed=7, num_workers=workers))
    assert len(reference) == len(parallel) == 8
    for (x0, y0), (x1, y1) in zip(reference, parallel):
        np.testing.assert_array_equal(y0, y1)
        np.testing.assert_array_equal(x0, x1)  # the random transform too
    labels = np.concatenate([y for _, y in reference])
    assert sorted(labels.tolist()) == [i * i for i in range(37)]
    assert labels.tolist() != [i * i for i in range(37)]


def test_epochs_differ_and_global_seed_reproduces():
    ds = Squares(20, transform=noise)
    loader = DataLoader(ds, batch_size=20, shuffle=True, num_workers=2)
    sj.manual_seed(11)
    first, second = batches(loader), batches(loader)
    assert first[0][1].tolist() != second[0][1].tolist()
    sj.manual_seed(11)
    again = batches(loader)
    np.testing.assert_array_equal(first[0][0], again[0][0])


@pytest.mark.parametrize("workers", [0, 2])
def test_worker_exception_names_the_index(workers):
    loader = DataLoader(Squares(20, fail_at=13), batch_size=4, num_workers=workers)
    with pytest.raises(ValueError, match=r"dataset index 13 \(batch 3\).*sample 13 is broken"):
        list(loader)


def test_early_break_and_reiteration_with_workers():
    loader = DataLoader(Squares(100), batch_size=2, num_workers=2)
    for i, _ in enumerate(loader):
        if i == 3:
            break
    assert sum(len(y) for _, y in loader) == 100


def test_torch_style_import_path():
    from shenjing.utils.data import DataLoader as UtilsLoader
    from shenjing.utils.data import TensorDataset as UtilsTensorDataset

    assert UtilsLoader is DataLoader and UtilsTensorDataset is TensorDataset


def test_argument_errors():
    ds = Squares(4)
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(ds, batch_size=2, batch_sampler=[[0, 1]])
    with pytest.raises(ValueError, match="sampler option is mutually exclusive with shuffle"):
        DataLoader(ds, sampler=range(4), shuffle=True)
    with pytest.raises(ValueError, match="num_workers should be a non-negative integer"):
        DataLoader(ds, num_workers=-1)
    loader = DataLoader(ds, batch_sampler=[[3, 0], [1]])
    assert [y.tolist() for _, y in loader] == [[9, 0], [1]] and loader.batch_size is None


def test_tensor_dataset_fast_path_equals_per_sample_collate():
    x = sj.tensor(np.random.default_rng(0).random((50, 3)).astype(np.float32))
    y = np.arange(50) % 7
    train, _ = random_split(TensorDataset(x, y), [40, 10], generator=sj.Generator(0))
    fast = list(DataLoader(train, batch_size=8, shuffle=True, seed=1))
    slow = list(DataLoader(train, batch_size=8, shuffle=True, seed=1,
                           collate_fn=lambda b: default_collate(b)))
    for (fx, fy), (sx, sy) in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(fx.numpy(), sx.numpy())
        assert fy.dtype == sy.dtype == np.int64 and fy.tolist() == sy.tolist()


def test_collate_structures_and_dtypes():
    Point = collections.namedtuple("Point", "x y")
    batch = [{"img": np.ones((2, 2), np.float32) * i, "label": i, "w": 0.5 * i, "ok": i > 0,
              "name": f"s{i}", "pair": (i, np.float64(i)), "pt": Point(i, [i])}
             for i in range(3)]
    out = default_collate(batch)
    assert out["img"].shape == (3, 2, 2) and out["img"].dtype == np.float32
    assert out["label"].dtype == np.int64 and out["label"].tolist() == [0, 1, 2]
    assert out["w"].dtype == np.float64 and out["ok"].dtype == np.bool_
    assert out["name"] == ["s0", "s1", "s2"]
    assert isinstance(out["pair"], list) and out["pair"][1].dtype == np.float64
    assert isinstance(out["pt"], Point) and out["pt"].y[0].tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match=r"got \(2, 2\) at position 0 and \(3, 2\) at position 1"):
        default_collate([np.zeros((2, 2)), np.zeros((3, 2))])
    with pytest.raises(TypeError, match="add transforms.ToTensor"):
        default_collate([Image.new("L", (2, 2))])


# ---------------------------------------------------------------------------- transforms


@pytest.fixture
def hwc():
    return np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)


def test_to_tensor_and_normalize(hwc):
    t = T.ToTensor()(Image.fromarray(hwc))
    assert t.shape == (3, 6, 8) and t.dtype == np.float32
    np.testing.assert_array_equal(t.numpy(), hwc.transpose(2, 0, 1).astype(np.float32) / 255)
    gray = T.ToTensor()(np.zeros((4, 5), np.uint8))
    assert gray.shape == (1, 4, 5)
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.5]
    n = T.Normalize(mean, std)(t).numpy()
    expected = (hwc.transpose(2, 0, 1) / 255 - np.array(mean)[:, None, None]) / np.array(
        std)[:, None, None]
    np.testing.assert_allclose(n, expected, rtol=1e-5, atol=1e-6)
    assert n.dtype == np.float32
    with pytest.raises(ValueError, match="std must not contain zeros"):
        T.Normalize([0.5], [0.0])
    with pytest.raises(TypeError, match="expected a float tensor, got dtype uint8"):
        T.normalize(sj.tensor(hwc.transpose(2, 0, 1)), mean, std)


def test_resize_sizes_and_nearest_by_hand():
    img = Image.new("RGB", (64, 48))  # width 64, height 48
    assert T.Resize(32)(img).size == (42, 32)  # shorter side -> 32, int(32 * 64 / 48)
    assert T.Resize((20, 30))(img).size == (30, 20)
    assert T.Resize(32)(Image.new("L", (48, 64))).size == (32, 42)
    grid = np.arange(16, dtype=np.uint8).reshape(4, 4)
    np.testing.assert_array_equal(T.Resize(2, "nearest")(grid), grid[1::2, 1::2])
    box = np.floor(grid.reshape(2, 2, 2, 2).mean(axis=(1, 3)) + 0.5)  # Pillow rounds half up
    np.testing.assert_array_equal(T.Resize(2, "box")(grid), box)


def test_resize_tensor_matches_torch_antialiased_bilinear():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).random((3, 40, 30)).astype(np.float32)
    for size in [(17, 11), (80, 45)]:
        out = T.resize(sj.tensor(x), size).numpy()
        ref = torch.nn.functional.interpolate(torch.from_numpy(x)[None], size=size,
                                              mode="bilinear", antialias=True)[0].numpy()
        np.testing.assert_allclose(out, ref, atol=1e-5)


def test_crops_and_flips_by_hand(hwc):
    np.testing.assert_array_equal(T.CenterCrop(4)(hwc), hwc[1:5, 2:6])
    np.testing.assert_array_equal(np.asarray(T.CenterCrop((3, 5))(Image.fromarray(hwc))),
                                  hwc[2:5, 2:7])  # round(1.5) = 2, round(1.5) = 2
    padded = T.CenterCrop(8)(hwc)
    assert padded.shape == (8, 8, 3) and not padded[0].any()
    np.testing.assert_array_equal(padded[1:7], hwc)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1.0)(hwc), hwc[:, ::-1])
    np.testing.assert_array_equal(np.asarray(T.RandomVerticalFlip(p=1.0)(Image.fromarray(hwc))),
                                  hwc[::-1])
    chw = sj.tensor(hwc.transpose(2, 0, 1).astype(np.float32))
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1.0)(chw).numpy(),
                                  hwc.transpose(2, 0, 1)[:, :, ::-1])
    assert T.RandomHorizontalFlip(p=0.0)(hwc) is hwc


def test_random_crop_with_padding_is_a_window_of_the_padded_image(hwc):
    sj.manual_seed(5)
    out = T.RandomCrop(6, padding=2, fill=(1, 2, 3))(hwc)
    full = np.empty((10, 12, 3), np.uint8)
    full[...] = [1, 2, 3]
    full[2:8, 2:10] = hwc
    windows = [full[i:i + 6, j:j + 6] for i in range(5) for j in range(7)]
    assert out.shape == (6, 6, 3) and any(np.array_equal(out, w) for w in windows)
    reflect = T.RandomCrop(6, padding=1, padding_mode="reflect")
    sj.manual_seed(5)
    a = reflect(hwc)
    sj.manual_seed(5)
    np.testing.assert_array_equal(a, reflect(hwc))
    with pytest.raises(ValueError, match=r"crop size \(9, 9\) is larger than"):
        T.RandomCrop(9)(hwc)


def test_rotation_and_affine_geometry(hwc):
    square = hwc[:6, :6]
    np.testing.assert_array_equal(np.asarray(T.rotate(Image.fromarray(square), 90)),
                                  np.rot90(square))
    # torchvision's convention: affine angles turn clockwise on screen.
    np.testing.assert_array_equal(T.affine(square, 90, (0, 0), 1.0, 0), np.rot90(square, -1))
    shifted = np.zeros_like(hwc)
    shifted[1:, 2:] = hwc[:-1, :-2]
    np.testing.assert_array_equal(T.affine(hwc, 0, (2, 1), 1.0, 0), shifted)
    t = sj.tensor(square.transpose(2, 0, 1).astype(np.float32))
    np.testing.assert_array_equal(T.rotate(t, 90).numpy(),
                                  np.rot90(square, axes=(0, 1)).transpose(2, 0, 1))


@pytest.mark.parametrize("make", [
    lambda: T.RandomResizedCrop(5),
    lambda: T.RandomRotation(40, fill=7),
    lambda: T.RandomAffine(20, translate=(0.2, 0.2), scale=(0.8, 1.2), shear=10),
    lambda: T.ColorJitter(0.5, 0.5, 0.5, 0.2),
    lambda: T.RandomCrop(4),
])
@pytest.mark.parametrize("kind", ["pil", "array", "tensor"])
def test_random_transforms_reproducible_under_a_seed(hwc, make, kind):
    image = {"pil": Image.fromarray(hwc), "array": hwc,
             "tensor": sj.tensor(hwc.transpose(2, 0, 1) / np.float32(255))}[kind]
    as_array = (lambda im: np.asarray(im, dtype=np.float64) if kind != "tensor"
                else im.numpy().astype(np.float64))
    outs = []
    for seed in (0, 0, 1, 2):
        sj.manual_seed(seed)
        outs.append(as_array(make()(image)))
    np.testing.assert_array_equal(outs[0], outs[1])
    assert any(o.shape != outs[0].shape or not np.array_equal(o, outs[0]) for o in outs[2:])


def test_colour_adjustments_by_hand():
    red = np.zeros((3, 2, 2), np.float32)
    red[0] = 1.0
    green = T.adjust_hue(sj.tensor(red), 1 / 3).numpy()
    np.testing.assert_allclose(green[:, 0, 0], [0, 1, 0], atol=1e-6)
    x = np.random.default_rng(2).random((3, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(T.adjust_brightness(sj.tensor(x), 0.5).numpy(), x * 0.5)
    gray = 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]
    np.testing.assert_allclose(T.Grayscale()(sj.tensor(x)).numpy()[0], gray, rtol=1e-5)
    np.testing.assert_allclose(T.adjust_saturation(sj.tensor(x), 0.0).numpy(),
                               np.broadcast_to(gray, x.shape), rtol=1e-5)
    mean = gray.mean()
    np.testing.assert_allclose(T.adjust_contrast(sj.tensor(x), 0.5).numpy(),
                               np.clip(0.5 * x + 0.5 * mean, 0, 1), rtol=1e-5)
    rgba = Image.new("RGBA", (2, 2), (200, 100, 50, 77))
    out = T.adjust_brightness(rgba, 0.5)
    assert out.mode == "RGBA" and out.getpixel((0, 0)) == (100, 50, 25, 77)
    pil_gray = np.asarray(T.Grayscale(3)(Image.fromarray((x.transpose(1, 2, 0) * 255)
                                                          .astype(np.uint8))))
    assert pil_gray.shape == (4, 4, 3) and (pil_gray[..., 0] == pil_gray[..., 2]).all()


def test_transforms_inside_a_dataloader_match_across_workers(hwc):
    class Images(Dataset):
        def __len__(self):
            return 12

        def __getitem__(self, i):
            return pipeline(Image.fromarray(np.roll(hwc, i, axis=1))), i

    pipeline = T.Compose([T.RandomResizedCrop(4), T.RandomHorizontalFlip(), T.ColorJitter(0.3),
                          T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)])
    a = batches(DataLoader(Images(), batch_size=4, shuffle=True, seed=3))
    b = batches(DataLoader(Images(), batch_size=4, shuffle=True, seed=3, num_workers=2))
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_transform_errors_name_the_problem():
    with pytest.raises(TypeError, match="expected a PIL image, an HWC NumPy array"):
        T.Resize(4)("not an image")
    with pytest.raises(ValueError, match="fill has 2 values but the image has 3 channels"):
        T.Pad(1, fill=(1, 2))(np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="hue should lie in"):
        T.ColorJitter(hue=0.7)
    with pytest.raises(TypeError, match="Compose: every transform must be callable"):
        T.Compose([T.ToTensor(), 3])


# ------------------------------------------------------------------------- preprocessing


def test_scalers_reuse_training_statistics():
    rng = np.random.default_rng(0)
    train = rng.normal(5, 3, (200, 4)).astype(np.float32)
    train[:, 3] = 2.0  # a constant feature must not produce NaN
    test = rng.normal(5, 3, (50, 4)).astype(np.float32)
    z, stats = standardize(train)
    assert z.dtype == np.float32 and np.allclose(z[:, :3].mean(0), 0, atol=1e-5)
    assert np.allclose(z[:, :3].std(0), 1, atol=1e-5) and (z[:, 3] == 0).all()
    zt, _ = standardize(test, stats=stats)
    np.testing.assert_allclose(zt, (test - train.mean(0)) / np.where(train.std(0) == 0, 1,
                                                                    train.std(0)), rtol=1e-5)
    m, mstats = min_max_scale(train, feature_range=(-1, 1))
    assert m[:, :3].min() == -1 and m[:, :3].max() == 1
    np.testing.assert_allclose(min_max_scale(test, (-1, 1), stats=mstats)[0],
                               (test - train.min(0)) / np.where(np.ptp(train, 0) == 0, 1,
                                                                np.ptp(train, 0)) * 2 - 1,
                               rtol=1e-5, atol=1e-6)
    mn, _ = mean_normalize(train)
    assert np.allclose(mn.mean(0), 0, atol=1e-5) and np.abs(mn).max() <= 1
    images = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    zi, istats = standardize(images, axis=None)
    assert zi.dtype == np.float32 and istats["mean"].shape == (1, 1, 1)
    with pytest.raises(ValueError, match=r"stats is missing \['std'\]"):
        standardize(test, stats={"mean": 0})


def test_to_categorical():
    out = to_categorical([[2], [0], [1]])
    np.testing.assert_array_equal(out, np.eye(3, dtype=np.float32)[[2, 0, 1]])
    assert out.dtype == np.float32
    assert to_categorical(np.array([1, 3]), num_classes=5, dtype="int64").tolist() == [
        [0, 1, 0, 0, 0], [0, 0, 0, 1, 0]]
    with pytest.raises(ValueError, match=r"label 5 is out of range for num_classes=5"):
        to_categorical([5], num_classes=5)
    with pytest.raises(ValueError, match="labels must be non-negative"):
        to_categorical([-1, 2])


def test_train_test_split():
    x = np.arange(100).reshape(50, 2)
    y = np.array([0] * 40 + [1] * 10)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, seed=0)
    assert len(x_te) == 10 and len(x_tr) == 40
    assert collections.Counter(y_te.tolist()) == {0: 8, 1: 2}
    assert sorted(np.concatenate([x_tr[:, 0], x_te[:, 0]]).tolist()) == list(range(0, 100, 2))
    np.testing.assert_array_equal(y[x_tr[:, 0] // 2], y_tr)  # rows stay paired
    a = train_test_split(list("abcdefghij"), test_size=3, shuffle=False)
    assert a == [list("abcdefg"), list("hij")]
    again = train_test_split(x, test_size=0.2, seed=0)
    assert np.array_equal(again[1], train_test_split(x, test_size=0.2, seed=0)[1])
    with pytest.raises(ValueError, match="different numbers of samples"):
        train_test_split(x, y[:3])
    with pytest.raises(ValueError, match="stratify needs shuffle=True"):
        train_test_split(x, stratify=y, shuffle=False)
