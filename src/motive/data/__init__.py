"""Data: video I/O, standardisation, dataset folders and the synthetic motion world."""

from motive.data.dataset import Clip, Dataset, DatasetError, Problem, load_dataset, scan_dataset
from motive.data.standardise import (
    StandardiseRecord,
    StandardiseTarget,
    read_standardised,
    standardise,
)
from motive.data.video import ClipReader, Video, VideoError, read_video, write_video

__all__ = [
    "Clip",
    "ClipReader",
    "Dataset",
    "DatasetError",
    "Problem",
    "StandardiseRecord",
    "StandardiseTarget",
    "Video",
    "VideoError",
    "load_dataset",
    "read_standardised",
    "read_video",
    "scan_dataset",
    "standardise",
    "write_video",
]
