"""Photos residents attach: checked by content, stripped of metadata, resized.

A photo from a phone carries EXIF: often the GPS position of the resident's home and
the phone's serial number. Only re-encoded copies are ever kept or shown: the pixels,
turned upright, without any metadata, at most ``large_px`` on the longest side, plus a
thumbnail. The type is read from the bytes, never from the file name or the declared
type, and the pixel count is checked from the header before anything is decoded.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from geo311.errors import InvalidRequest

#: Formats taken (as Pillow names them); HEIC and others need converting on the phone.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "MPO")


@dataclass(frozen=True)
class PhotoLimits:
    """How big an upload may be and how big the kept copies are."""

    max_bytes: int = 15 * 1024 * 1024
    max_pixels: int = 50_000_000
    min_side_px: int = 16
    large_px: int = 1600
    thumb_px: int = 400
    quality: int = 85


@dataclass(frozen=True)
class PreparedPhoto:
    """The copies to keep: JPEG bytes without metadata, named by their content."""

    name: str  # 32 hex digits of the SHA-256 of ``large``
    large: bytes
    thumb: bytes
    width: int
    height: int
    source_format: str

    @property
    def files(self) -> dict[str, bytes]:
        """File name -> bytes, as a media store keeps them."""
        return {f"{self.name}.jpg": self.large, f"{self.name}_thumb.jpg": self.thumb}


def prepare_photo(data: bytes, limits: PhotoLimits | None = None) -> PreparedPhoto:
    """Check an uploaded photo and make its stripped copies.

    Raises ``InvalidRequest`` saying what arrived for anything that is not a photo of a
    taken format and size.

    Examples
    --------
    >>> photo = prepare_photo(open("pothole.jpg", "rb").read())  # doctest: +SKIP
    >>> sorted(photo.files)  # doctest: +SKIP
    ['3f2a….jpg', '3f2a…_thumb.jpg']
    """
    limits = limits or PhotoLimits()
    if not data:
        raise InvalidRequest("the photo is empty")
    if len(data) > limits.max_bytes:
        raise InvalidRequest(f"the photo has {len(data):,} bytes but at most "
                             f"{limits.max_bytes:,} are taken")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            fmt = image.format or "unknown"
            width, height = image.size
            if fmt not in ACCEPTED_FORMATS:
                raise InvalidRequest(f"the photo is a {fmt} file but is expected to be a JPEG, "
                                     "PNG, WebP or GIF image")
            if width * height > limits.max_pixels:
                raise InvalidRequest(f"the photo has {width} x {height} pixels but at most "
                                     f"{limits.max_pixels:,} pixels are taken")
            if min(width, height) < limits.min_side_px:
                raise InvalidRequest(f"the photo has {width} x {height} pixels: too small to "
                                     "show anything")
            # A JPEG is decoded straight at the smallest power-of-two scale still at least
            # ``large_px``: a 12-megapixel photo then costs a quarter of a full decode.
            shrink = min(1.0, limits.large_px / max(width, height))
            image.draft("RGB", (max(1, int(width * shrink)), max(1, int(height * shrink))))
            image.load()
            upright = ImageOps.exif_transpose(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidRequest(f"the photo claims more pixels than the {limits.max_pixels:,} "
                             "pixels taken") from exc
    except UnidentifiedImageError as exc:
        raise InvalidRequest("the photo is not an image this service can read (JPEG, PNG, "
                             "WebP or GIF)") from exc
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        raise InvalidRequest(f"the photo could not be read: {type(exc).__name__}") from exc
    pixels = _rgb(upright)
    pixels.thumbnail((limits.large_px, limits.large_px), Image.Resampling.LANCZOS,
                     reducing_gap=3.0)
    large = _jpeg(pixels, limits.large_px, limits.quality)
    thumb = _jpeg(pixels, limits.thumb_px, limits.quality)  # from the large copy's pixels
    shown = pixels.size
    return PreparedPhoto(hashlib.sha256(large).hexdigest()[:32], large, thumb, shown[0],
                         shown[1], fmt)


def _rgb(image: Image.Image) -> Image.Image:
    """The pixels alone, in RGB, on white where the image was transparent."""
    if image.mode in ("RGBA", "LA", "P"):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


def _jpeg(image: Image.Image, longest_px: int, quality: int) -> bytes:
    """A JPEG copy at most ``longest_px`` on its longest side, with no metadata at all."""
    copy = image.copy()
    copy.thumbnail((longest_px, longest_px), Image.Resampling.LANCZOS)
    clean = Image.new("RGB", copy.size)
    clean.paste(copy)  # a new image carries no info dict: no EXIF, ICC, comments
    out = io.BytesIO()
    clean.save(out, "JPEG", quality=quality, optimize=True, progressive=True)
    return out.getvalue()
