"""Datasets, membership splits and Lightning data modules."""

from lit_mia.data.datamodule import IndexedDataset, MembershipDataModule, collate_batch, loader
from lit_mia.data.datasets import DATASETS, DatasetBundle, load_dataset
from lit_mia.data.splits import MembershipSplit, make_split

__all__ = [
    "DATASETS",
    "DatasetBundle",
    "IndexedDataset",
    "MembershipDataModule",
    "MembershipSplit",
    "collate_batch",
    "load_dataset",
    "loader",
    "make_split",
]
