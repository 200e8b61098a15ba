"""Photo folders: layout and scan, tf.data pipelines, split, check, synthetic and Kaggle-prepared
sets, augmentation and cached views (imports: errors, config). Cheap to import: the Keras-based
augmentation lives in `harness.data._augment` and `harness.data._views`, imported where used."""

from harness.data._check import DataReport, check_dataset, check_folder
from harness.data._folders import SPLITS, DataSet, Split, fingerprint, image_dataset, prepare, scan, write_synthetic
from harness.data._split import SplitResult, split_folder

__all__ = ["SPLITS", "DataReport", "DataSet", "Split", "SplitResult", "check_dataset", "check_folder",
           "fingerprint", "image_dataset", "prepare", "scan", "split_folder", "write_synthetic"]
