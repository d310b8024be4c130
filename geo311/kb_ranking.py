"""Knowledge-base search, the part both backends share: reading a query and ranking.

Residents do not use the catalogue's words: they say "rats", "garbage can", "pot hole",
"stret light out". A query is read into *slots*, one per word, each with the terms that
may stand for it: the word, its correction against the index vocabulary (a typo), a
joined or split compound ("pot hole" / "pothole") and what the city's synonym table
says it means. The database's full-text index (FTS5 on SpatiaLite, tsvector on PostGIS)
finds candidates for all those terms; ``rank`` orders them here, the same way on both
backends, so a backend changes only the tie-breaks.
"""

from __future__ import annotations

import functools
import math
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import snowballstemmer  # type: ignore[import-untyped]
from rapidfuzz import process
from rapidfuzz.distance import OSA

from geo311.model import KbDocument, KbHit

#: Words that say nothing about the topic of a question.
STOPWORDS = frozenset("""
a an the and or but if of to in into at by for from with about as is are was were be been
being it its this that these those there here i me my we our you your he she they them
their his her what which who whom when where why how do does did can could would should
will shall may might must have has had not please hi hello need want like get got just
some any all very really so too also am pm im dont cant wont thats ive id ill near
across front next behind call calling report reporting someone somebody something thing
things help know tell say said""".split())

#: Words in nearly every service name; they say little about which one.
GENERIC = frozenset({"complaint", "request", "report"})

#: Field weights: a word of the title counts most, then keywords, then the department and
#: the body.
TITLE_WEIGHT, KEYWORD_WEIGHT, GROUP_WEIGHT, BODY_WEIGHT = 3.0, 2.0, 1.0, 1.0
#: How much a term counts by where it came from.
CORRECTED_WEIGHT, COMPOUND_WEIGHT, SYNONYM_WEIGHT = 0.9, 1.0, 0.85
#: Bonus for the share of a document's title words the query covers.
TITLE_COVERAGE_WEIGHT = 1.5
_WORD = re.compile(r"[a-z0-9]+")
_STEMMER = snowballstemmer.stemmer("english")
_STEMMER_LOCK = threading.Lock()


def words(text: str) -> list[str]:
    """Lower-case words without accents or apostrophes.

    Examples
    --------
    >>> words("O'Hare's Café — pot-holes!")
    ['ohares', 'cafe', 'pot', 'holes']
    """
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return _WORD.findall(plain.replace("'", "").replace("\u2019", ""))


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The English (Porter 2) stem, so "removed" meets "removal" and "rats" meets "rat".

    Examples
    --------
    >>> [stem(w) for w in ("rats", "potholes", "baiting", "removed", "removal")]
    ['rat', 'pothol', 'bait', 'remov', 'remov']
    """
    with _STEMMER_LOCK:  # a Snowball stemmer keeps state while it works
        return _STEMMER.stemWord(word)  # type: ignore[no-any-return]


def stems(text: str) -> list[str]:
    """The stems of the topic words of ``text`` (stopwords dropped)."""
    return [stem(w) for w in words(text) if w not in STOPWORDS]


@dataclass(frozen=True)
class Vocabulary:
    """The words of the index, with how many documents hold each stem."""

    surface: frozenset[str]  # words as written (what the full-text index is asked for)
    document_frequency: Mapping[str, int]  # stem -> documents holding it
    documents: int

    @classmethod
    def of(cls, docs: Sequence[KbDocument], synonyms: Mapping[str, str]) -> Vocabulary:
        """The vocabulary of ``docs``; synonym phrases count as known words too."""
        df: Counter[str] = Counter()
        surface: set[str] = set()
        for d in docs:
            text = " ".join((d.title, d.keywords, d.grouping, d.body))
            ws = [w for w in words(text) if w not in STOPWORDS]
            surface.update(ws)
            df.update({stem(w) for w in ws})
        for phrase, meaning in synonyms.items():
            surface.update(w for w in words(phrase + " " + meaning) if w not in STOPWORDS)
        return cls(frozenset(surface), dict(df), len(docs))

    def knows(self, word: str) -> bool:
        """Whether ``word`` (or its stem) is in the index or the synonym table."""
        return word in self.surface or stem(word) in self.document_frequency

    def idf(self, term: str) -> float:
        """Inverse document frequency of a stem (rare words count more)."""
        df = self.document_frequency.get(term, 0)
        return math.log((self.documents + 1) / (df + 0.5)) if df else 0.0

    def correct(self, word: str) -> str | None:
        """The indexed word ``word`` is most likely a misspelling of, or None.

        One edit (a transposition counts as one) is allowed in words of 4-5 letters,
        two in longer ones; among equally near words the most frequent wins.
        """
        if len(word) < 4 or word.isdigit():
            return None
        limit = 1 if len(word) <= 5 else 2
        found = process.extract(word, self.surface, scorer=OSA.distance,
                                score_cutoff=limit, limit=8)
        if not found:
            return None
        best = min(found, key=lambda f: (f[1], -self.document_frequency.get(stem(f[0]), 0),
                                         f[0]))
        return str(best[0])


@dataclass(frozen=True)
class Slot:
    """One word of the query and the weighted stems that may stand for it."""

    word: str
    terms: dict[str, float] = field(default_factory=dict)

    def add(self, term: str, weight: float) -> None:
        """Let ``term`` stand for this word with ``weight`` (the best weight is kept)."""
        if term and term not in STOPWORDS:
            self.terms[term] = max(weight, self.terms.get(term, 0.0))


@dataclass(frozen=True)
class QueryPlan:
    """A query read into slots, and the words to ask the full-text index for."""

    text: str
    slots: tuple[Slot, ...]
    search_words: tuple[str, ...]
    corrections: Mapping[str, str]


def plan_query(text: str, synonyms: Mapping[str, str], vocabulary: Vocabulary) -> QueryPlan:
    """Read a resident's words into slots: corrections, compounds and synonyms.

    Examples
    --------
    >>> vocab = Vocabulary(frozenset({"graffiti", "removal", "pothole", "street"}),
    ...                    {"graffiti": 1, "removal": 1, "pothole": 2, "street": 3}, 3)
    >>> plan = plan_query("grafitti on the pot hole", {}, vocab)
    >>> dict(plan.corrections), sorted(plan.search_words)
    ({'grafitti': 'graffiti'}, ['graffiti', 'hole', 'pot', 'pothole'])
    """
    raw = [w for w in words(text) if w not in STOPWORDS]
    fixed: list[str] = []
    corrections: dict[str, str] = {}
    for w in raw:
        better = None if vocabulary.knows(w) else vocabulary.correct(w)
        if better:
            corrections[w] = better
        fixed.append(better or w)
    slots = [Slot(w) for w in raw]
    search: set[str] = set()
    for slot, w, f in zip(slots, raw, fixed, strict=True):
        slot.add(stem(w), 1.0)
        search.add(w)
        if f != w:
            slot.add(stem(f), CORRECTED_WEIGHT)
            search.add(f)
        elif not vocabulary.knows(w):  # "streetlight": two indexed words run together
            for i in range(3, len(w) - 2):
                if vocabulary.knows(w[:i]) and vocabulary.knows(w[i:]):
                    slot.add(stem(w[:i]), COMPOUND_WEIGHT)
                    slot.add(stem(w[i:]), COMPOUND_WEIGHT)
                    search.update((w[:i], w[i:]))
                    break
    for i in range(len(fixed) - 1):  # "pot hole": one indexed word written as two
        joined = fixed[i] + fixed[i + 1]
        if joined in vocabulary.surface:
            for s in slots[i:i + 2]:
                s.add(stem(joined), COMPOUND_WEIGHT)
            search.add(joined)
    _apply_synonyms(slots, [stem(f) for f in fixed], synonyms, search)
    return QueryPlan(text, tuple(s for s in slots if s.terms), tuple(sorted(search)),
                     corrections)


def _apply_synonyms(slots: list[Slot], fixed: list[str], synonyms: Mapping[str, str],
                    search: set[str]) -> None:
    """Add what each synonym phrase found in the query means to the slots it covers."""
    for phrase, meaning in synonyms.items():
        pattern = stems(phrase)
        n = len(pattern)
        if not n:
            continue
        for i in range(len(fixed) - n + 1):
            if fixed[i:i + n] != pattern:
                continue
            for w in words(meaning):
                if w in STOPWORDS:
                    continue
                search.add(w)
                for s in slots[i:i + n]:
                    s.add(stem(w), SYNONYM_WEIGHT)


@dataclass(frozen=True)
class _Fields:
    title: frozenset[str]
    keywords: frozenset[str]
    grouping: frozenset[str]
    body: frozenset[str]
    title_topics: frozenset[str]


def _fields(d: KbDocument) -> _Fields:
    title = frozenset(stems(d.title))
    return _Fields(title, frozenset(stems(d.keywords)), frozenset(stems(d.grouping)),
                   frozenset(stems(d.body)), frozenset(title - GENERIC))


def score(plan: QueryPlan, doc: KbDocument, vocabulary: Vocabulary) -> float:
    """How well ``doc`` answers ``plan``: each slot's best term, weighted by field and rarity.

    A slot counts once however many of its terms match, so "rats" meaning "rodent"
    does not count twice on a page that says both.
    """
    f = _fields(doc)
    total = 0.0
    covered: set[str] = set()
    for slot in plan.slots:
        best = 0.0
        for term, weight in slot.terms.items():
            where = (TITLE_WEIGHT if term in f.title else KEYWORD_WEIGHT if term in f.keywords
                     else GROUP_WEIGHT if term in f.grouping
                     else BODY_WEIGHT if term in f.body else 0.0)
            if where:
                best = max(best, where * weight * max(vocabulary.idf(term), 0.1))
                if term in f.title_topics:
                    covered.add(term)
        total += best
    if f.title_topics and total:
        total += TITLE_COVERAGE_WEIGHT * len(covered) / len(f.title_topics)
    return total


def rank(plan: QueryPlan, candidates: Iterable[tuple[KbDocument, float]],
         vocabulary: Vocabulary, limit: int) -> list[KbHit]:
    """Order candidates by ``score``; the backend's own rank only breaks ties.

    ``candidates`` pairs each document with its full-text rank (higher is better:
    bm25 on FTS5, ts_rank on PostgreSQL).
    """
    scored = []
    for doc, backend_rank in candidates:
        s = score(plan, doc, vocabulary)
        if s > 0:
            scored.append((round(s, 6), backend_rank, doc))
    scored.sort(key=lambda x: (-x[0], -x[1], x[2].kind, x[2].ref))
    return [KbHit(d.kind, d.ref, d.title, d.service_code, s, d.grouping)
            for s, _, d in scored[:limit]]
