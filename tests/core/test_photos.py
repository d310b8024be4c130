"""Photos: read by content, upright, no metadata left, limits that say what arrived."""

import io
import struct
import zlib

import pytest
from PIL import Image

from geo311.errors import InvalidRequest
from geo311.media import FileMediaStore, PhotoUpload, kept_photo, thumbnail_of
from geo311.photos import PhotoLimits, prepare_photo

GPS = {1: "N", 2: (41.0, 52.0, 30.0), 3: "W", 4: (87.0, 37.0, 0.0)}


def phone_photo(size=(800, 600), orientation=6, fmt="JPEG"):
    """A photo as a phone writes it: EXIF with GPS, maker, serial and an orientation."""
    img = Image.new("RGB", size, (200, 50, 50))
    img.paste((20, 20, 220), (0, 0, size[0] // 4, size[1] // 4))  # a blue top-left corner
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "PhoneMaker"
    exif[0xA431] = "SERIAL-12345"  # BodySerialNumber
    exif[0x8825] = GPS
    out = io.BytesIO()
    img.save(out, fmt, exif=exif.tobytes())
    return out.getvalue()


def test_a_phone_photo_keeps_its_pixels_upright_and_loses_every_metadata():
    data = phone_photo()
    assert b"PhoneMaker" in data and b"SERIAL-12345" in data  # the reference: EXIF is there
    photo = prepare_photo(data)
    for copy in (photo.large, photo.thumb):
        assert b"Exif" not in copy and b"PhoneMaker" not in copy and b"SERIAL" not in copy
        opened = Image.open(io.BytesIO(copy))
        assert opened.format == "JPEG" and len(opened.getexif()) == 0
        assert not opened.info.get("icc_profile")
    # Orientation 6 (turn 90 degrees clockwise): 800 x 600 is shown 600 x 800, and the
    # blue corner that was top-left is now top-right.
    large = Image.open(io.BytesIO(photo.large)).convert("RGB")
    assert large.size == (photo.width, photo.height) == (600, 800)
    r, g, b = large.getpixel((590, 10))
    assert b > 150 and r < 100
    assert max(Image.open(io.BytesIO(photo.thumb)).size) == 400
    assert photo.name == prepare_photo(data).name and len(photo.name) == 32


def test_a_large_photo_is_resized_and_a_transparent_one_flattened_on_white():
    big = io.BytesIO()
    Image.new("RGB", (4000, 3000), (10, 120, 10)).save(big, "PNG")
    photo = prepare_photo(big.getvalue())
    assert (photo.width, photo.height) == (1600, 1200) and photo.source_format == "PNG"
    clear = io.BytesIO()
    Image.new("RGBA", (100, 100), (0, 0, 0, 0)).save(clear, "PNG")
    flat = Image.open(io.BytesIO(prepare_photo(clear.getvalue()).large)).convert("RGB")
    assert min(flat.getpixel((50, 50))) > 240


def _png_claiming(width, height):
    """A tiny real PNG whose header claims ``width`` x ``height`` pixels (a bomb's header)."""
    out = io.BytesIO()
    Image.new("L", (1, 1)).save(out, "PNG")
    data = bytearray(out.getvalue())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr:ihdr + 17]))
    data[ihdr + 17:ihdr + 21] = struct.pack(">I", crc)
    return bytes(data)


@pytest.mark.parametrize(("data", "words"), [
    (b"", "empty"),
    (b"GIF89a this is not really an image", "not an image"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "not an image"),
    (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "not an image"),
    (_png_claiming(60_000, 60_000), "pixels"),
    (_png_claiming(8, 8), "too small"),
    (phone_photo()[:400], "could not be read"),
])
def test_what_is_not_a_photo_is_refused_saying_what_arrived(data, words):
    with pytest.raises(InvalidRequest, match=words):
        prepare_photo(data)


def test_the_byte_limit_is_checked_before_reading():
    with pytest.raises(InvalidRequest, match="bytes but at most 1,000"):
        prepare_photo(phone_photo(), PhotoLimits(max_bytes=1000))


def test_a_refused_report_takes_its_photo_files_back(tmp_path):
    media = FileMediaStore(tmp_path)
    upload = PhotoUpload(phone_photo(), media, "https://311.city.example/")
    with pytest.raises(RuntimeError), kept_photo(upload) as url:
        name = url.rsplit("/", 1)[1]
        assert media.exists(name) and media.exists(name.replace(".jpg", "_thumb.jpg"))
        raise RuntimeError("intake refused the report")
    assert not media.exists(name) and list(tmp_path.rglob("*.jpg")) == []
    with kept_photo(upload) as url:  # kept when the report is taken
        pass
    assert url.startswith("https://311.city.example/media/") and media.exists(name)
    # A second report with the same photo that is refused leaves the first one's files.
    with pytest.raises(RuntimeError), kept_photo(upload):
        raise RuntimeError("refused")
    assert media.exists(name)
    assert thumbnail_of(url) == url.replace(".jpg", "_thumb.jpg")
    assert thumbnail_of("https://elsewhere.example/pothole.jpg") == ""
    with pytest.raises(InvalidRequest):
        media.get("../secret_key")
