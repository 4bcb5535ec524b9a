"""Data: dataset layouts → records → patient-level splits → cached image arrays.

Normalizations live in `xfer.data.normalize` (imported from there, so this package stays torch-free).
"""
from xfer.data.cache import load_image_array
from xfer.data.read_image import UnreadableImageError, read_image, read_image_resized
from xfer.data.prepare import PreparedData, prepare_data
from xfer.data.records import DATASETS, Record, SkippedImagesWarning, load_records
from xfer.data import xrv_datasets  # noqa: F401  (registers the torchxrayvision layout)
from xfer.data.splits import (PatientLeakError, Split, check_no_patient_in_two_splits, nested_subsets,
                              patient_level_split)

__all__ = [
    "DATASETS", "PatientLeakError", "PreparedData", "Record", "SkippedImagesWarning", "Split",
    "UnreadableImageError", "check_no_patient_in_two_splits", "load_image_array", "load_records",
    "nested_subsets", "patient_level_split", "prepare_data", "read_image", "read_image_resized",
]
