"""Score free-text redaction on the labelled snippets, beside the ``phonenumbers`` matcher.

    python benchmarks/redaction.py

On each labelled set (``tests/data/redaction_snippets.jsonl`` and the held-out
``redaction_holdout.jsonl``) prints recall (labelled identifiers fully masked), the
false-positive rate (negative snippets changed) and the stray rate (findings touching
no labelled identifier) of ``geo311.redaction``, per label; then the same phone figures for Google's
libphonenumber port (``phonenumbers.PhoneNumberMatcher``, region US, each leniency), if
it is installed, and the time per snippet of each.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from geo311.redaction import find_identifiers, redact_text  # noqa: E402

DATA = ROOT / "tests" / "data"
#: The labelled set the tests hold to recall >= 0.98 and false positives <= 0.02, and a
#: smaller set written after the patterns were, never used to tune them.
SETS = {"snippets": DATA / "redaction_snippets.jsonl", "holdout": DATA / "redaction_holdout.jsonl"}


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def score(snippets: list[dict], find, labels: set[str]) -> dict[str, object]:
    """Recall on ``labels`` and false positives, for a finder text -> [(start, end)]."""
    hit, total = Counter(), Counter()
    negatives = changed = findings = stray = 0
    for s in snippets:
        text = s["text"]
        spans = [(a, b, lab) for a, b, lab in s["spans"] if lab in labels]
        found = find(text)
        covered = {i for a, b in found for i in range(a, b)}
        for a, b, lab in spans:
            total[lab] += 1
            hit[lab] += all(i in covered for i in range(a, b) if not text[i].isspace())
        findings += len(found)
        stray += sum(1 for a, b in found if not any(a < e and s0 < b for s0, e, _ in s["spans"]))
        if not s["spans"]:
            negatives += 1
            changed += bool(found)
    return {"recall": sum(hit.values()) / max(sum(total.values()), 1),
            "by_label": {k: f"{hit[k]}/{total[k]}" for k in sorted(total)},
            "fp_rate": changed / max(negatives, 1), "negatives": negatives,
            "stray": f"{stray}/{findings}"}


def timed(snippets: list[dict], find, repeat: int = 20) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        for s in snippets:
            find(s["text"])
    return (time.perf_counter() - start) / (repeat * len(snippets)) * 1e6


#: Repetitive 4,000-character descriptions (the most a description holds) that make
#: badly nested patterns backtrack for seconds: the time of each must stay small.
HOSTILE = ["a", "1", "a.", "1 ", "12-", "a at b dot ", "(1)", "+1 ", "dot ", "a dot ",
           "x at ", "a at a dot", ".", "1.", "a@b.", "tel 1-", "call 1 "]


def worst_case() -> None:
    times = []
    for unit in HOSTILE:
        text = (unit * (4000 // len(unit) + 1))[:4000]
        start = time.perf_counter()
        redact_text(text)
        times.append(((time.perf_counter() - start) * 1000, unit))
    slowest = sorted(times, reverse=True)[:3]
    print("hostile 4,000-character texts, slowest:",
          ", ".join(f"{unit!r} x n {ms:.1f} ms" for ms, unit in slowest))


def main() -> None:
    for name, path in SETS.items():
        print(f"== {name} ({path.name})")
        compare(load(path))
    worst_case()


def compare(snippets: list[dict]) -> None:
    print(f"{len(snippets)} snippets, {sum(len(s['spans']) for s in snippets)} identifiers, "
          f"{sum(1 for s in snippets if not s['spans'])} negatives")

    def ours(text):
        return [(f.start, f.end) for f in find_identifiers(text)]

    def ours_phone(text):
        return [(f.start, f.end) for f in find_identifiers(text) if f.kind == "phone"]

    print("geo311.redaction, all labels:", score(snippets, ours, {"phone", "email", "ssn", "card"}),
          f"{timed(snippets, redact_text):.1f} µs/snippet")
    print("geo311.redaction, phones only:", score(snippets, ours_phone, {"phone"}))
    try:
        import phonenumbers
    except ImportError:
        print("phonenumbers is not installed: pip install phonenumbers to compare")
        return
    for name in ("POSSIBLE", "VALID", "STRICT_GROUPING"):
        leniency = getattr(phonenumbers.Leniency, name)

        def theirs(text, leniency=leniency):
            return [(m.start, m.end) for m in
                    phonenumbers.PhoneNumberMatcher(text, "US", leniency=leniency)]

        print(f"phonenumbers {phonenumbers.__version__} {name}, phones only:",
              score(snippets, theirs, {"phone"}), f"{timed(snippets, theirs, 5):.1f} µs/snippet")


if __name__ == "__main__":
    main()
