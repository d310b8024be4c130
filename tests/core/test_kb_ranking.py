"""Reading a resident's query: typos, compounds, synonyms; ranking by field and rarity."""

from geo311.kb_ranking import Vocabulary, plan_query, rank, stem, words
from geo311.model import KbDocument

DOCS = [
    KbDocument(1, "service", "SGA", "Rodent Baiting/Rat Complaint", "rodents, baiting",
               "", "SGA", "Animals"),
    KbDocument(2, "service", "PHF", "Pothole in Street Complaint", "pothole, street", "",
               "PHF", "Streets"),
    KbDocument(3, "service", "GRAF", "Graffiti Removal Request", "graffiti, paint", "",
               "GRAF", "Graffiti"),
    KbDocument(4, "service", "SFD", "Street Light Out Complaint", "street light, lamp", "",
               "SFD", "Lights"),
    KbDocument(5, "article", "hours", "311 hours", "open", "We answer calls all day.", "", ""),
]
SYN = {"rats": "rodent baiting", "garbage can": "garbage cart"}
VOCAB = Vocabulary.of(DOCS, SYN)


def _top(query):
    plan = plan_query(query, SYN, VOCAB)
    return [h.ref for h in rank(plan, [(d, 0.0) for d in DOCS], VOCAB, 5)]


def test_words_and_stems():
    assert words("O'Hare — POT-holes") == ["ohare", "pot", "holes"]
    assert stem("potholes") == stem("pothole") and stem("removed") == stem("removal")


def test_typos_are_corrected_against_the_index_vocabulary():
    plan = plan_query("grafitti", SYN, VOCAB)
    assert plan.corrections == {"grafitti": "graffiti"}
    assert _top("grafitti")[0] == "GRAF"
    assert _top("stret light out")[0] == "SFD"
    # A short word is never "corrected" into another (rat -> cat, out -> our).
    assert plan_query("cat", SYN, VOCAB).corrections == {}


def test_two_words_meet_their_compound_and_back():
    assert "pothole" in plan_query("pot hole", SYN, VOCAB).search_words
    assert _top("pot hole")[0] == "PHF"
    assert {"street", "light"} <= set(plan_query("streetlight", SYN, VOCAB).search_words)


def test_synonyms_from_the_city_table_expand_the_query():
    assert _top("rats")[0] == "SGA"
    assert _top("rats") == _top("rodent baiting")[:len(_top("rats"))]


def test_a_slot_counts_once_and_title_words_weigh_most():
    both = KbDocument(9, "article", "x", "Rat rodent rodents", "", "", "", "")
    plan = plan_query("rats", SYN, Vocabulary.of([*DOCS, both], SYN))
    hits = rank(plan, [(d, 0.0) for d in (*DOCS, both)], Vocabulary.of([*DOCS, both], SYN), 5)
    assert {h.ref for h in hits} == {"SGA", "x"}
    assert hits[0].score < 2 * hits[1].score  # "rat" and "rodent" do not add up


def test_nothing_in_common_finds_nothing():
    assert _top("zzzz") == [] and _top("the of and") == []
