"""Data loading, as torch.utils.data + torchvision: data sets, samplers, DataLoader,
transforms, real data sets (`datasets`), text tools (`text`) and NumPy preprocessing.

Data sets are cached under `$SHENJING_DATA` (default `~/.cache/shenjing`).
"""

from . import datasets, preprocessing, text, transforms
from ._files import data_home
from .dataloader import DataLoader, default_collate, default_convert
from .dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from .sampler import (
    BatchSampler,
    DistributedSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)
from .text import BucketBatchSampler, PadCollate, Vocab, pad_sequences, tokenize

__all__ = [
    "BatchSampler",
    "BucketBatchSampler",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "DistributedSampler",
    "PadCollate",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "Subset",
    "SubsetRandomSampler",
    "TensorDataset",
    "Vocab",
    "WeightedRandomSampler",
    "data_home",
    "datasets",
    "default_collate",
    "default_convert",
    "pad_sequences",
    "preprocessing",
    "random_split",
    "text",
    "tokenize",
    "transforms",
]
