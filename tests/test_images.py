"""Any image mode, DICOM and npz entries decode to float32 in [0, 1]; bad files raise a named error."""
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from conftest import DATA
from xfer.data import UnreadableImageError, read_image, read_image_resized

GRAY = np.array([[0, 64], [128, 255]], dtype=np.uint8)


def save(tmp_path, img: Image.Image, name: str) -> str:
    path = tmp_path / name
    img.save(path)
    return str(path)


def check_range(pixels: np.ndarray, shape: tuple) -> None:
    assert pixels.dtype == np.float32 and pixels.shape == shape
    assert pixels.min() >= 0.0 and pixels.max() <= 1.0


def test_8bit_grayscale(tmp_path):
    pixels = read_image(save(tmp_path, Image.fromarray(GRAY), "gray.png"))
    check_range(pixels, (2, 2))
    np.testing.assert_allclose(pixels, GRAY / 255.0, atol=1e-6)
    rgb = read_image(save(tmp_path, Image.fromarray(GRAY), "gray.png"), channels=3)
    check_range(rgb, (2, 2, 3))
    np.testing.assert_allclose(rgb[:, :, 2], GRAY / 255.0, atol=1e-6)


def test_16bit_grayscale_uses_its_bit_depth(tmp_path):
    full = np.array([[0, 16384], [32768, 65535]], dtype=np.uint16)
    pixels = read_image(save(tmp_path, Image.fromarray(full), "full16.png"))
    check_range(pixels, (2, 2))
    np.testing.assert_allclose(pixels, full / 65535.0, atol=1e-6)
    twelve_bit = np.array([[0, 1024], [2048, 4095]], dtype=np.uint16)  # 12-bit detector data in 16-bit PNG
    np.testing.assert_allclose(read_image(save(tmp_path, Image.fromarray(twelve_bit), "12.png")),
                               twelve_bit / 4095.0, atol=1e-6)


@pytest.mark.parametrize("mode,color", [("RGB", (255, 0, 0)), ("RGBA", (0, 255, 0, 0)), ("LA", (200, 10))])
def test_color_and_alpha_modes(tmp_path, mode, color):
    img = Image.new(mode, (3, 2), color)
    gray = read_image(save(tmp_path, img, f"{mode}.png"))
    check_range(gray, (2, 3))
    expected = {"RGB": 0.299, "RGBA": 0.587, "LA": 200 / 255}[mode]  # ITU-R 601 luma; alpha dropped
    np.testing.assert_allclose(gray, expected, atol=1 / 255)
    rgb = read_image(save(tmp_path, img, f"{mode}.png"), channels=3)
    check_range(rgb, (2, 3, 3))


def test_palette(tmp_path):
    img = Image.new("P", (4, 4), 1)
    img.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)  # index 1 = blue
    gray = read_image(save(tmp_path, img, "palette.png"))
    np.testing.assert_allclose(gray, 0.114, atol=1 / 255)
    np.testing.assert_allclose(read_image(save(tmp_path, img, "palette.png"), channels=3)[0, 0], (0, 0, 1))


def test_real_jpeg_and_png_files():
    for path in [next((DATA / "kermany-pneumonia-sample" / "images").glob("*.jpeg")),
                 next((DATA / "covid-actualmed" / "images").glob("*.png"))]:
        pixels = read_image(str(path))
        assert pixels.ndim == 2 and pixels.dtype == np.float32 and 0 <= pixels.min() < pixels.max() <= 1
        small = read_image_resized(str(path), 32, 3)
        assert small.shape == (3, 32, 32) and small.dtype == np.uint8


def test_resized_matches_the_full_decode(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 64), (64, 1)).astype(np.uint16)
    for img, name in ((Image.fromarray(ramp), "ramp16.png"), (Image.fromarray((ramp >> 8).astype(np.uint8)), "ramp8.png")):
        path = save(tmp_path, img, name)
        small = read_image_resized(path, 16, 1)
        assert small.shape == (1, 16, 16)
        full = read_image(path)
        expected = full.reshape(16, 4, 16, 4).mean(axis=(1, 3)) * 255
        assert np.abs(small[0] - expected).max() <= 3


def write_dicom(path, pixels: np.ndarray, photometric: str, window: tuple | None) -> str:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.set_pixel_data(pixels, photometric, 12)
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    ds.save_as(path, enforce_file_format=True)
    return str(path)


def test_dicom_monochrome1_is_inverted_and_windowed(tmp_path):
    stored = np.array([[0, 512, 1024], [1536, 2048, 4095]], dtype=np.uint16)
    path = write_dicom(tmp_path / "m1.dcm", stored, "MONOCHROME1", window=(1024, 1024))
    assert pydicom.dcmread(path).PhotometricInterpretation == "MONOCHROME1"
    pixels = read_image(path)
    check_range(pixels, (2, 3))
    # window [512, 1536] spans the whole output; MONOCHROME1: high stored values are dark
    np.testing.assert_allclose(pixels, [[1, 1, 0.5], [0, 0, 0]], atol=2e-3)
    assert read_image_resized(path, 8, 3).shape == (3, 8, 8)


def test_dicom_monochrome2_without_window_scales_by_bits_stored(tmp_path):
    stored = np.array([[0, 1024], [2048, 4095]], dtype=np.uint16)
    pixels = read_image(write_dicom(tmp_path / "m2.dcm", stored, "MONOCHROME2", window=None))
    np.testing.assert_allclose(pixels, stored / 4095.0, atol=1e-6)


def test_npz_entry():
    path = f"{DATA / 'pneumoniamnist-28' / 'pneumoniamnist.npz'}::test/5"
    with np.load(DATA / "pneumoniamnist-28" / "pneumoniamnist.npz") as z:
        expected = z["test_images"][5] / 255.0
    pixels = read_image(path)
    check_range(pixels, (28, 28))
    np.testing.assert_allclose(pixels, expected, atol=1e-6)
    with pytest.raises(UnreadableImageError, match="no array 'holdout_images'"):
        read_image(path.replace("test/5", "holdout/5"))


@pytest.mark.parametrize("content", [b"not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_corrupt_file_raises_an_error_naming_it(tmp_path, content):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(UnreadableImageError, match="broken.png") as caught:
        read_image(str(path))
    assert caught.value.path == str(path) and caught.value.reason
    with pytest.raises(UnreadableImageError):
        read_image_resized(str(path), 16)
