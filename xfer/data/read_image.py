"""Read one image (PNG/JPEG, DICOM, or an entry of an .npz array) as float32 in [0, 1]."""
from __future__ import annotations

import functools

import numpy as np
from PIL import Image

NPZ_SEPARATOR = "::"  # "/abs/file.npz::train/12" = entry 12 of array train_images
DICOM_SUFFIXES = (".dcm", ".dicom")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff") + DICOM_SUFFIXES  # class_folders reads these
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601, as PIL's convert("L")


class UnreadableImageError(Exception):
    """A file that cannot be decoded as an image; says which file and why."""

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"cannot read image {path}: {reason}")


def read_image(path: str, channels: int = 1) -> np.ndarray:
    """Decode `path` to float32 in [0, 1]: (H, W) for 1 channel, (H, W, 3) for 3."""
    return _decode(path, channels, size=None)


def read_image_resized(path: str, size: int, channels: int = 1) -> np.ndarray:
    """Decode `path` and resize it (antialiased bilinear) to uint8 (channels, size, size)."""
    return _decode(path, channels, size)


def _decode(path: str, channels: int, size: int | None) -> np.ndarray:
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    try:
        if NPZ_SEPARATOR in path:
            pixels = _read_npz_entry(path)
        elif path.lower().endswith(DICOM_SUFFIXES):
            pixels = _read_dicom(path)
        else:
            with Image.open(path) as img:
                if size is not None:
                    img.draft("L" if channels == 1 else "RGB", (size, size))  # JPEG: decode at ≥ size
                img8 = _as_8bit(img, channels)
                if img8 is not None and size is not None:
                    resized = np.asarray(img8.resize((size, size), Image.BILINEAR))
                    return resized[None] if channels == 1 else resized.transpose(2, 0, 1).copy()
                pixels = np.asarray(img8, dtype=np.float32) / 255.0 if img8 is not None else _high_bit_depth(img)
    except UnreadableImageError:
        raise
    except Exception as e:  # PIL, pydicom and numpy raise many types for a bad file
        raise UnreadableImageError(path, f"{type(e).__name__}: {e}") from e
    pixels = to_channels(pixels, channels)
    return pixels if size is None else _resize_float(pixels, size)


def _as_8bit(img: Image.Image, channels: int) -> Image.Image | None:
    """`img` as 8-bit L (1 channel) or RGB (3), alpha dropped; None for 16-bit/32-bit modes."""
    if img.mode.startswith("I") or img.mode == "F":
        return None
    target = "L" if channels == 1 else "RGB"
    return img if img.mode == target else img.convert(target)  # RGB → L: ITU-R 601 luma


def _high_bit_depth(img: Image.Image) -> np.ndarray:
    """I;16 / I / F image → float32 (H, W) in [0, 1]."""
    if img.mode == "F":
        return _min_max(np.asarray(img, dtype=np.float32))
    return _scale_by_bit_depth(np.asarray(img).astype(np.float32))


def _resize_float(pixels: np.ndarray, size: int) -> np.ndarray:
    """float (H, W[, 3]) in [0, 1] → uint8 (C, size, size), antialiased bilinear per channel."""
    planes = [pixels] if pixels.ndim == 2 else [pixels[:, :, c] for c in range(pixels.shape[2])]
    resized = [np.asarray(Image.fromarray(np.ascontiguousarray(p), "F").resize((size, size), Image.BILINEAR))
               for p in planes]
    return np.round(np.clip(np.stack(resized), 0.0, 1.0) * 255.0).astype(np.uint8)


def to_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """(H, W) or (H, W, 3) float → the requested channel count (luma for RGB → gray)."""
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if channels == 1:
        return pixels if pixels.ndim == 2 else (pixels[:, :, :3] @ LUMA).astype(np.float32)
    if pixels.ndim == 2:
        return np.repeat(pixels[:, :, None], 3, axis=2)
    return pixels[:, :, :3]


def _scale_by_bit_depth(pixels: np.ndarray) -> np.ndarray:
    """Integer pixels → [0, 1] by the smallest bit depth (≥ 8) holding them, so 12-bit data in a
    16-bit container is not 16× too dark."""
    pixels = np.clip(pixels, 0, None)
    bits = max(8, int(pixels.max()).bit_length())
    return pixels / float(2**bits - 1)


def _min_max(pixels: np.ndarray) -> np.ndarray:
    low, high = float(pixels.min()), float(pixels.max())
    return np.zeros_like(pixels) if high <= low else (pixels - low) / (high - low)


@functools.lru_cache(maxsize=4)
def _npz_arrays(file: str) -> dict[str, np.ndarray]:
    with np.load(file) as z:
        return {key: z[key] for key in z.files}


def _read_npz_entry(path: str) -> np.ndarray:
    file, entry = path.split(NPZ_SEPARATOR, 1)
    split, index = entry.rsplit("/", 1)
    arrays = _npz_arrays(file)
    key = f"{split}_images"
    if key not in arrays:
        raise UnreadableImageError(path, f"{file} has no array {key!r}; arrays: {', '.join(arrays)}")
    pixels = arrays[key][int(index)]
    if pixels.dtype == np.uint8:
        return pixels.astype(np.float32) / 255.0
    if np.issubdtype(pixels.dtype, np.integer):
        return _scale_by_bit_depth(pixels.astype(np.float32))
    return np.clip(pixels.astype(np.float32), 0.0, 1.0)


def _read_dicom(path: str) -> np.ndarray:
    """DICOM → [0, 1] like `xrv.utils.read_xray_dcm`: modality LUT, VOI window/LUT if the file has
    one, then scaled by the output range; MONOCHROME1 is inverted so bone is bright."""
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    ds = pydicom.dcmread(path, force=True)
    photometric = ds.get("PhotometricInterpretation")
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise UnreadableImageError(path, f"PhotometricInterpretation {photometric!r} is not supported; "
                                         "only MONOCHROME1/MONOCHROME2 X-rays are")
    pixels = apply_modality_lut(ds.pixel_array, ds).astype(np.float64)
    low, high = _dicom_value_range(ds)
    if "VOILUTSequence" in ds:
        pixels = apply_voi_lut(pixels, ds, index=0)
        low, high = 0.0, float(2 ** ds.VOILUTSequence[0].LUTDescriptor[2] - 1)
    elif "WindowCenter" in ds and "WindowWidth" in ds:
        pixels = apply_voi_lut(pixels, ds, index=0)  # maps the window onto [low, high]
    scaled = np.clip((pixels - low) / max(high - low, 1e-12), 0.0, 1.0).astype(np.float32)
    if photometric == "MONOCHROME1":
        scaled = 1.0 - scaled
    return scaled


def _dicom_value_range(ds) -> tuple[float, float]:
    """Range of pixel values after the modality LUT (the same one pydicom's windowing maps onto)."""
    bits = int(ds.BitsStored)
    if ds.get("ModalityLUTSequence"):
        return 0.0, float(2 ** ds.ModalityLUTSequence[0].LUTDescriptor[2] - 1)
    if int(ds.get("PixelRepresentation", 0)) == 0:
        low, high = 0.0, float(2**bits - 1)
    else:
        low, high = float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    if slope is not None and intercept is not None:
        low, high = low * float(slope) + float(intercept), high * float(slope) + float(intercept)
    return low, high
