"""Data: video I/O, standardisation, dataset folders and the synthetic motion world."""

from motive.data.dataset import Clip, Dataset, DatasetError, Problem, load_dataset, scan_dataset
from motive.data.standardise import StandardiseRecord, StandardiseTarget, standardise
from motive.data.video import Video, VideoError, read_video, write_video

__all__ = [
    "Clip",
    "Dataset",
    "DatasetError",
    "Problem",
    "StandardiseRecord",
    "StandardiseTarget",
    "Video",
    "VideoError",
    "load_dataset",
    "read_video",
    "scan_dataset",
    "standardise",
    "write_video",
]
