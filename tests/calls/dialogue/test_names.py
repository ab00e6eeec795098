import gzip
import math
import pickle
from pathlib import Path

import pytest
from django.core.management import call_command

from calls.dialogue.names import (
    DOUBLE_GAP_COST,
    GAP_COST,
    OTHER_LETTER_COST,
    RANK_WEIGHT,
    SAME_SHAPE_COST,
    VOWEL_GAP_COST,
    NameLexicon,
    letters_cost,
    lexicon_build,
    lexicon_load,
    name_from_letters,
    name_lexicon,
    name_reading_score,
    pronounceable,
    shape,
)


@pytest.fixture
def lexicon() -> NameLexicon:
    return NameLexicon(
        [
            ("first", "nora", "Nora", 76),
            ("first", "mora", "Mora", 900),
            ("first", "greg", "Greg", 40),
            ("first", "olivia", "Olivia", 150),
            ("first", "diego", "Diego", 20),
            ("last", "novak", "Novak", 3),
            ("last", "nowak", "Nowak", 1),
            ("last", "brown", "Brown", 4),
            ("last", "lindqvist", "Lindqvist", 35),
            ("last", "torres", "Torres", 12),
            ("last", "mcdonald", "McDonald", 30),
        ]
    )


def test_shape_merges_letters_a_phone_line_confuses() -> None:
    assert shape("novak") == shape("nobak") == shape("nopak")
    assert shape("rossi") == shape("roffi")
    assert shape("novak") != shape("nowak")


@pytest.mark.parametrize(
    ("heard", "name", "cost"),
    [
        ("novak", "novak", 0.0),
        ("nobak", "novak", SAME_SHAPE_COST),
        ("nolak", "novak", OTHER_LETTER_COST),
        ("nvak", "novak", GAP_COST),
        ("hnnah", "hannah", VOWEL_GAP_COST),
        ("chn", "chen", VOWEL_GAP_COST),
        ("sreya", "srey", GAP_COST),  # short vowels get lost, not added
        ("hannahh", "hannah", DOUBLE_GAP_COST),
        ("hanah", "hannah", DOUBLE_GAP_COST),
        ("linbqvift", "lindqvist", 2 * SAME_SHAPE_COST),
        ("tatatel", "patel", DOUBLE_GAP_COST + SAME_SHAPE_COST),  # a stuttered "T-A"
    ],
)
def test_letters_cost(heard: str, name: str, cost: float) -> None:
    assert letters_cost(heard, name) == pytest.approx(cost)


@pytest.mark.parametrize(
    ("word", "expected"),
    [("nora", True), ("lindqvist", True), ("zhang", True), ("rlvert", False), ("tdrt", False), ("schmidt", True)],
)
def test_pronounceable(word: str, expected: bool) -> None:
    assert pronounceable(word) is expected


def test_neighbours_are_same_shape_or_one_letter_off(lexicon: NameLexicon) -> None:
    assert lexicon.neighbours("nobak", ("last",)) == {"novak"}
    assert lexicon.neighbours("noba", ("last",)) == {"novak"}  # a letter dropped
    assert lexicon.neighbours("nora", ("first",)) == {"nora", "mora"}


def test_choose_prefers_a_common_name_that_sounds_like_the_letters(lexicon: NameLexicon) -> None:
    assert lexicon.choose("nobak", kinds=("last",)).name == "Novak"
    assert lexicon.choose("linbqvift", kinds=("last",)).name == "Lindqvist"
    assert lexicon.choose("mcdonald", kinds=("last",)).name == "McDonald"  # the lexicon's spelling


def test_choose_keeps_unknown_letters_that_are_near_no_name(lexicon: NameLexicon) -> None:
    assert lexicon.choose("okafor", kinds=("last",)).name == "Okafor"


def test_the_spoken_name_decides_between_close_candidates(lexicon: NameLexicon) -> None:
    # "M" and "N" blur: the letters alone say Mora; heard clearly as Nora, the commoner Nora wins.
    assert lexicon.choose("mora", kinds=("first",)).name == "Mora"
    assert lexicon.choose("mora", kinds=("first",), heard="nora", heard_confidence=0.9).name == "Nora"


def test_name_from_letters_splits_run_together_letters(lexicon: NameLexicon) -> None:
    assert name_from_letters(["diegotoref"], lexicon=lexicon) == ["Diego", "Torres"]
    assert name_from_letters(["olibia", "drown"], lexicon=lexicon) == ["Olivia", "Brown"]
    # Heard as one word: lined up with the spelled words letter by letter.
    assert name_from_letters(["noralinbqvift"], heard=["noralindkist"], heard_confidence=0.4, lexicon=lexicon) == [
        "Nora",
        "Lindqvist",
    ]


def test_a_letter_ending_one_word_and_starting_the_next_may_be_heard_once() -> None:
    # "V, I, K, R, A, M. M, A, L, H, O, T, R, A" came through as "...R, A, M, A, L...".
    lexicon = NameLexicon([("first", "vikram", "Vikram", 100), ("last", "malhotra", "Malhotra", 322)])
    assert name_from_letters(["vikramalhotra"], lexicon=lexicon) == ["Vikram", "Malhotra"]
    # Both letters heard: the shared reading is not needed, and costs more than the plain split.
    assert name_from_letters(["vikram", "malhotra"], lexicon=lexicon) == ["Vikram", "Malhotra"]


def test_a_spelled_vowel_is_not_dropped_to_reach_a_commoner_name() -> None:
    # "F, R, E, Y, A. H, A, R, A, L, D, S, E, N." came through as "S, R, E, Y, A, H, A, ...";
    # "Srey" (rank 1 in Cambodia) without the spelled A had beaten Freya with its rhyming F.
    lexicon = NameLexicon(
        [("first", "srey", "Srey", 1), ("first", "freya", "Freya", 233), ("last", "haraldsen", "Haraldsen", 232)]
    )

    assert name_from_letters(
        ["sreyaharaldsen"], heard=["free", "harrelton"], heard_confidence=0.6, lexicon=lexicon
    ) == ["Freya", "Haraldsen"]


def test_a_vowelless_abbreviation_in_the_lexicon_is_no_name_of_its_own() -> None:
    # "N, G, O, Z, I. E, Z, E." came through as "M, G, O, C, I, E, C, E"; "Md" (Mohammed,
    # rank 1 in Bangladesh) made "Md Ociece" the cheapest reading.
    lexicon = NameLexicon([("first", "md", "Md", 1), ("first", "ngozi", "Ngozi", 54), ("last", "eze", "Eze", 27)])

    assert name_from_letters(["mgociece"], lexicon=lexicon) == ["Ngozi", "Eze"]
    assert lexicon.prior("md") == lexicon.prior("zz") == 1.3


def test_one_word_heard_counts_as_one_word_only_when_about_as_long_as_the_spelling() -> None:
    # "Caller" was all the extraction kept of "My name is caller us me" (Taller Usme).
    lexicon = NameLexicon([("first", "tal", "Tal", 300)])

    assert name_from_letters(["talerusme"], heard=["caller"], heard_confidence=0.2, lexicon=lexicon) == [
        "Tal",
        "Erusme",
    ]
    assert name_from_letters(["talerusme"], heard=["talerusme"], heard_confidence=0.2, lexicon=lexicon) == ["Talerusme"]


def test_names_are_written_with_their_prefixes_capitals_and_apostrophes() -> None:
    # The lexicon's source writes "Osullivan", "Mcdonald", "Dsouza".
    lexicon = NameLexicon(
        [
            ("last", "osullivan", "Osullivan", 18),
            ("last", "mcdonald", "Mcdonald", 65),
            ("last", "dsouza", "Dsouza", 40),
            ("last", "osorto", "Osorto", 11),
            ("first", "owen", "Owen", 30),
            ("first", "oneil", "Oneil", 600),
        ]
    )

    assert [lexicon.display(key) for key in ("osullivan", "mcdonald", "dsouza", "osorto", "owen")] == [
        "O'Sullivan",
        "McDonald",
        "D'Souza",
        "Osorto",
        "Owen",
    ]
    # Spelled letters no lexicon knows are written the same way.
    assert lexicon.display("obrien") == "O'Brien"
    assert name_from_letters(["siobhan", "osullivan"], lexicon=lexicon) == ["Siobhan", "O'Sullivan"]
    # The apostrophe goes into surnames only.
    assert lexicon.display("oneil") == "Oneil"
    assert lexicon.display("oneil", kinds=("last",)) == "O'Neil"


def test_name_from_letters_keeps_one_known_word(lexicon: NameLexicon) -> None:
    assert name_from_letters(["brown"], lexicon=lexicon) == ["Brown"]


def test_two_unknown_words_spelled_with_a_pause_stay_two_words(lexicon: NameLexicon) -> None:
    # No lexicon knows either word; one long word used to cost less than two.
    assert name_from_letters(["efsane", "chercu"], heard=["efsane", "chercu"], lexicon=lexicon) == [
        "Efsane",
        "Chercu",
    ]
    assert name_from_letters(["efsane", "chercu"], lexicon=lexicon) == ["Efsane", "Chercu"]


def test_one_word_heard_and_spelled_stays_one_word(lexicon: NameLexicon) -> None:
    assert name_from_letters(["efsanechercu"], heard=["efsanechercu"], lexicon=lexicon) == ["Efsanechercu"]


def test_clearly_spelled_unknown_surname_is_not_swapped_for_a_known_one_a_letter_shorter() -> None:
    lexicon = NameLexicon([("first", "salamata", "Salamata", 80), ("last", "raj", "Raj", 60)])
    assert name_from_letters(["salamata", "raje"], heard=["salamata", "raje"], lexicon=lexicon) == [
        "Salamata",
        "Raje",
    ]


def _write_dataset(directory: Path) -> None:
    tables = {
        "first": {
            "Nora": {"rank": {"US": 512, "MY": 76}},
            "Zzz": {"rank": {"US": 5000}},  # too rare
            "Jean-Luc": {"rank": {"FR": 10}},
            "Émile": {"rank": {"FR": 3}},  # not plain letters
        },
        "last": {
            "O'brien": {"rank": {"IE": 7}},
            "Nora": {"rank": {"MA": 382}},
            "Nobody": {"rank": {}},
            "De Vries": {"rank": {"NL": 3}},
        },
    }
    directory.mkdir()
    for kind, table in tables.items():
        with gzip.open(directory / f"{kind}_names.pkl.gz", "wb") as handle:
            pickle.dump(table, handle)


def test_lexicon_build_keeps_common_plain_names_with_their_best_rank(tmp_path: Path) -> None:
    _write_dataset(tmp_path / "v3")
    out = tmp_path / "lexicon.tsv.gz"

    assert lexicon_build(out, source=tmp_path / "v3") == 5

    with gzip.open(out, "rt", encoding="utf-8") as handle:
        assert handle.read().splitlines() == [
            "first\tjeanluc\tJean-Luc\t10",
            "first\tnora\tNora\t76",
            "last\tdevries\tDe Vries\t3",
            "last\tnora\tNora\t382",
            "last\tobrien\tO'brien\t7",
        ]
    lexicon = lexicon_load(out)
    assert len(lexicon) == 5
    assert lexicon.rank("nora", ("first",)) == 76
    assert lexicon.rank("nora") == 76
    assert lexicon.rank("obrien", ("first",)) is None


def test_build_command_writes_where_asked_and_skips_when_present(tmp_path: Path) -> None:
    out = tmp_path / "names.tsv.gz"
    out.write_bytes(b"")

    call_command("name_lexicon_build", "--out", str(out), "--if-missing")

    assert out.read_bytes() == b""  # left alone


def test_missing_lexicon_file_means_an_empty_lexicon(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NAME_LEXICON_PATH", str(tmp_path / "absent.tsv.gz"))
    name_lexicon.cache_clear()
    try:
        assert len(name_lexicon()) == 0
    finally:
        monkeypatch.delenv("NAME_LEXICON_PATH")
        name_lexicon.cache_clear()


def test_the_built_lexicon_knows_names_from_many_countries() -> None:
    lexicon = name_lexicon()
    assert len(lexicon) > 90_000
    for key in ("maria", "aisha", "priya", "wei", "kwame"):
        assert lexicon.rank(key, ("first",)) is not None, key
    for key in ("gonzalez", "patel", "lindqvist", "okafor", "nguyen"):
        assert lexicon.rank(key, ("last",)) is not None, key


def test_a_name_reading_scores_every_reading_as_evidence(lexicon: NameLexicon) -> None:
    both_right = name_reading_score(["Nora", "Lindqvist"], ["noralindqvist", "noralindqvist"], lexicon=lexicon)
    one_blurred = name_reading_score(["Nora", "Lindqvist"], ["noralindqvist", "noralinbqvist"], lexicon=lexicon)

    assert both_right - one_blurred == pytest.approx(SAME_SHAPE_COST)
    assert both_right == pytest.approx(-RANK_WEIGHT * (math.log10(76) + math.log10(35)))
