"""Where photos are kept, and how a report with a photo is taken in.

``MediaStore`` is the small interface a photo store needs (a folder on disk today;
an S3-compatible bucket is a drop-in with the same four methods). Files are named by
their content, so the same photo sent twice is kept once, and a name never changes
meaning: a copy may be cached for ever.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from geo311.errors import InvalidRequest
from geo311.photos import PhotoLimits, prepare_photo

LOGGER = logging.getLogger(__name__)

#: The names a media store holds: a content hash, and ``_thumb`` for the small copy.
NAME = re.compile(r"[0-9a-f]{32}(_thumb)?\.jpg")
#: The path under the public URL where photos are served.
MEDIA_PATH = "/media/"


class MediaStore(Protocol):
    """Keeps photo files by name."""

    def put(self, name: str, data: bytes) -> bool:
        """Keep ``data`` as ``name``; False when it was kept already."""

    def get(self, name: str) -> bytes | None:
        """The file's bytes, or None."""

    def delete(self, name: str) -> None:
        """Forget the file (nothing if it is not there)."""

    def exists(self, name: str) -> bool:
        """Whether the file is kept."""

    def names(self, older_than: datetime) -> list[str]:
        """The names of files kept since before ``older_than``."""


def _checked(name: str) -> str:
    if not NAME.fullmatch(name):
        raise InvalidRequest(f"media name {name[:80]!r} is not one this store gives")
    return name


class FileMediaStore:
    """Photos in a folder (``instance/media``), two levels of hash prefix deep."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, name: str) -> Path:
        return self.root / _checked(name)[:2] / name

    def put(self, name: str, data: bytes) -> bool:
        """Write atomically (a temporary file renamed), so a reader never sees half a file."""
        path = self._path(name)
        if path.exists():
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return True

    def get(self, name: str) -> bytes | None:
        """The file's bytes, or None."""
        path = self._path(name)
        return path.read_bytes() if path.exists() else None

    def delete(self, name: str) -> None:
        """Remove the file if it is there."""
        self._path(name).unlink(missing_ok=True)

    def exists(self, name: str) -> bool:
        """Whether the file is there."""
        return self._path(name).exists()

    def names(self, older_than: datetime) -> list[str]:
        """Files written before ``older_than`` (by modification time), sorted."""
        limit = older_than.timestamp()
        return sorted(p.name for p in self.root.glob("??/*.jpg")
                      if NAME.fullmatch(p.name) and p.stat().st_mtime < limit)


@dataclass(frozen=True)
class PhotoUpload:
    """A photo sent with a report, and where to keep it and link it from."""

    data: bytes
    media: MediaStore
    base_url: str  # the service's public URL: media_url is base_url + /media/<name>
    limits: PhotoLimits = field(default_factory=PhotoLimits)


@contextmanager
def kept_photo(upload: PhotoUpload | None) -> Iterator[str]:
    """Check and keep a report's photo; give its ``media_url`` ("" without a photo).

    The photo is checked before anything is kept (``InvalidRequest`` otherwise). If the
    block raises, files this call added are removed again, so a refused report leaves
    nothing behind.

    Examples
    --------
    >>> with kept_photo(upload) as url:  # doctest: +SKIP
    ...     submit(store, ctx, replace(new, media_url=url))
    """
    if upload is None:
        yield ""
        return
    photo = prepare_photo(upload.data, upload.limits)
    added = [name for name, data in photo.files.items() if upload.media.put(name, data)]
    try:
        yield f"{upload.base_url.rstrip('/')}{MEDIA_PATH}{photo.name}.jpg"
    except BaseException:
        for name in added:
            upload.media.delete(name)
        raise
    LOGGER.info("kept photo %s (%s x %s, from %s)", photo.name, photo.width, photo.height,
                photo.source_format)


def thumbnail_of(media_url: str) -> str:
    """The thumbnail of a photo this service keeps (its ``/media/`` link), else ""."""
    head, _, name = media_url.rpartition(MEDIA_PATH)
    if not head or not NAME.fullmatch(name) or name.endswith("_thumb.jpg"):
        return ""
    return f"{head}{MEDIA_PATH}{name[:-4]}_thumb.jpg"


#: A file younger than this may belong to a report being taken in right now (its files
#: are kept before its row is written), so pruning leaves it.
PRUNE_AFTER = timedelta(hours=1)


def prune_media(media: MediaStore, referenced: set[str], now: datetime | None = None) -> int:
    """Delete kept photos no stored request links any more; return how many files went.

    ``referenced`` holds the photo names (``<hash>.jpg``) stored requests still link;
    each one's thumbnail stays with it. Run after retention empties media links, it
    is idempotent and also removes what an interrupted run left.
    """
    keep = referenced | {f"{n[:-4]}_thumb.jpg" for n in referenced}
    gone = [n for n in media.names((now or datetime.now(UTC)) - PRUNE_AFTER) if n not in keep]
    for name in gone:
        media.delete(name)
    if gone:
        LOGGER.info("pruned %s photo files no request links", len(gone))
    return len(gone)


def linked_names(media_urls: list[str]) -> set[str]:
    """The names of this service's photos among stored ``media_url`` values."""
    return {url.rpartition(MEDIA_PATH)[2] for url in media_urls
            if MEDIA_PATH in url and NAME.fullmatch(url.rpartition(MEDIA_PATH)[2])}
