"""Every cache is listed, with what invalidates it, in ``geo311/caches.py``."""

import re

import geo311.caches
from geo311.config import PROJECT_ROOT


def _sources():
    for folder in ("geo311", "web"):
        yield from (PROJECT_ROOT / folder).rglob("*.py")


def test_every_lru_cache_and_app_cache_is_named_in_the_caches_module():
    listed = geo311.caches.__doc__
    found = []
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        found += re.findall(r"@(?:functools\.)?lru_cache\([^)]*\)\s*\ndef (\w+)", text)
        found += [f".{m}" for m in re.findall(  # a method cached per instance
            r"self\.(\w+) = lru_cache\(", text)]
        found += re.findall(r'extensions(?:\.setdefault\(|\[)(?:\s*#[^\n]*)?\s*"([^"]+)"', text)
    assert len(found) >= 8  # the search itself still finds what it looks for
    missing = [name for name in found if name not in listed]
    assert missing == [], missing
