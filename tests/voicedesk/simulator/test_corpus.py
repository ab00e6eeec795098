"""The scenario corpus: valid, varied, internally consistent, and split once, reproducibly, in balanced halves."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from voicedesk.simulator.corpus import (
    CORPUS_DIR,
    SHARED_DIR,
    SPLIT_FILE,
    SPLIT_METHOD,
    Split,
    difficulty,
    load_split,
    scenario_set,
    split_corpus,
)
from voicedesk.simulator.scenario import Behaviour, Scenario, ScenarioError, load_scenarios, parse_scenario

CORPUS = load_scenarios([CORPUS_DIR])
BY_ID = {s.id: s for s in CORPUS}

_WORD_DIGITS = {
    "zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip


def heard_digits(spoken: str) -> str:
    """The digits a careful listener writes down; after "sorry" the caller starts again."""
    if "sorry" in spoken:
        spoken = spoken.split("sorry", 1)[1]
    digits, times = "", 1
    for token in re.findall(r"[a-z]+|\d+", spoken.lower()):
        if token in ("double", "triple"):
            times = 2 if token == "double" else 3
            continue
        value = token if token.isdigit() else _WORD_DIGITS.get(token)
        if value is None:
            continue  # "area", "code", "no"
        digits += value[0] * times + value[1:]
        times = 1
    return digits


def test_heard_digits_reads_every_style() -> None:
    assert heard_digits("555 201 3344") == "5552013344"
    assert heard_digits("five five five, two oh one, double three four four") == "5552013344"
    assert heard_digits("area code 415, 555 0199") == "4155550199"
    assert heard_digits("five five five, triple two, oh eight four four") == "5552220844"
    assert heard_digits("555 318, no sorry, 555 381 4470") == "5553814470"


def test_at_least_sixty_valid_scenarios_named_by_their_ids() -> None:
    files = sorted(CORPUS_DIR.glob("*.yaml")) + sorted(CORPUS_DIR.glob("*.yml"))
    assert len(files) >= 60
    assert len(CORPUS) == len(files)
    assert sorted(Path(s.source).stem for s in CORPUS) == sorted(s.id for s in CORPUS)
    assert len(BY_ID) == len(CORPUS)


def test_ids_do_not_clash_with_the_shared_scenarios() -> None:
    if not SHARED_DIR.is_dir():
        pytest.skip("the shared scenarios are not checked out next to the project")
    shared = load_scenarios([SHARED_DIR])
    assert not {s.id for s in shared} & set(BY_ID)
    assert not {s.tenant.slug for s in shared} & {s.tenant.slug for s in CORPUS}
    assert not {s.tenant.phone_number for s in shared} & {s.tenant.phone_number for s in CORPUS}


def test_at_least_eight_businesses_each_described_once_with_their_own_setup() -> None:
    tenants: dict[str, set[object]] = {}
    for scenario in CORPUS:
        tenants.setdefault(scenario.tenant.slug, set()).add(scenario.tenant)
    assert len(tenants) >= 8
    # One configuration per business, so the calls of a run share a tenant.
    assert {slug: len(specs) for slug, specs in tenants.items()} == dict.fromkeys(tenants, 1)
    specs = [next(iter(specs)) for specs in tenants.values()]
    assert len({s.phone_number for s in specs}) == len(specs)
    assert len({tuple(s.categories or ()) for s in specs}) == len(specs)
    for spec in specs:
        assert "general" in (spec.categories or ()), spec.slug
        assert spec.urgent_keywords, spec.slug
        assert {"name", "callback_number", "reason"} <= set(spec.collect or ()), spec.slug
        assert 4 <= len(spec.faqs) <= 8, spec.slug
    collected = Counter(field for spec in specs for field in spec.collect or ())
    assert collected["email"] >= 3
    assert collected["address"] >= 3
    assert collected["preferred_time"] >= 3


def test_every_kind_of_call_the_corpus_promises_is_there() -> None:
    def count(predicate: object) -> int:
        return sum(1 for s in CORPUS if predicate(s))  # type: ignore[operator]

    number = lambda s: s.caller.facts.get("callback_number", "")  # noqa: E731
    assert count(lambda s: re.search(r"[a-z]", number(s))) >= 12  # numbers said in words
    assert count(lambda s: " oh" in number(s)) >= 8
    assert count(lambda s: "double" in number(s)) >= 3
    assert count(lambda s: "triple" in number(s)) >= 2
    assert count(lambda s: "area code" in number(s)) >= 3
    assert count(lambda s: "sorry" in number(s)) >= 2  # a correction mid-number
    assert count(lambda s: s.caller.says_first.rstrip().endswith("?")) >= 8  # questions first
    assert count(lambda s: "email" in (s.tenant.collect or ()) and "email" not in s.caller.facts) >= 4
    assert count(lambda s: isinstance(s.caller.confirms, dict)) >= 6
    assert count(lambda s: s.caller.behaviour.hangs_up_after is not None) >= 4
    assert count(lambda s: s.caller.behaviour.silent_start) >= 3
    assert count(lambda s: s.caller.behaviour.wants_human) >= 4
    assert count(lambda s: s.caller.behaviour.volunteers_all) >= 3
    assert count(lambda s: s.caller.behaviour.interrupts_greeting) >= 3
    assert count(lambda s: (s.expect.unanswered_questions or 0) > 0) >= 4
    assert count(lambda s: s.expect.callback_requested is False) >= 5  # questions only
    assert len({s.caller.facts.get("name") for s in CORPUS}) == len(CORPUS)  # every caller a different person


def test_expected_numbers_are_what_the_caller_says() -> None:
    for scenario in CORPUS:
        expected = scenario.expect.ticket.callback_number
        if scenario.expect.callback_requested is False:
            assert expected is None, scenario.id  # questions only: nobody needs calling back
            continue
        assert expected is not None, scenario.id
        confirms = scenario.caller.confirms
        if scenario.caller.behaviour.hangs_up_after is not None:
            # The call may end before the number is asked for: the caller ID stands in, and it is the same number.
            assert expected == scenario.caller.phone, scenario.id
            assert heard_digits(scenario.caller.facts["callback_number"]) == expected.removeprefix("+1"), scenario.id
            continue
        said = confirms.get("callback_number") if isinstance(confirms, dict) else None
        said = said or scenario.caller.facts["callback_number"]
        assert "+1" + heard_digits(said) == expected, scenario.id
        # The caller ID is another number, so the ticket must carry the number said.
        assert scenario.caller.phone != expected, scenario.id


def test_expected_priority_follows_the_business_rules() -> None:
    for scenario in CORPUS:
        # What the caller says is wrong (not questions) is what raises the priority.
        statements = [scenario.caller.says_first, *(a for a in scenario.caller.asks if not a.endswith("?"))]
        said = " ".join(statements).lower()
        keywords = scenario.tenant.urgent_keywords or ()
        if any(k.lower() in said for k in keywords):
            want = "urgent"
        elif scenario.caller.behaviour.wants_human or re.search(r"\b(?:emergency|urgent|urgently)\b", said):
            want = "high"
        else:
            want = "normal"
        expected = scenario.expect.ticket.priority
        assert expected in (None, want), scenario.id
        # No question mentions an urgent keyword, where it would be ambiguous.
        questions = " ".join(a for a in scenario.caller.asks if a.endswith("?")).lower()
        assert not any(k.lower() in questions for k in keywords), scenario.id


def test_questions_only_calls_expect_a_resolved_general_ticket_and_no_callback() -> None:
    for scenario in CORPUS:
        expect = scenario.expect
        if expect.callback_requested is False:
            assert expect.ticket.category == "general", scenario.id
            assert expect.ticket.status == "resolved", scenario.id
            assert expect.unanswered_questions == 0, scenario.id
            assert expect.faq_answered, scenario.id
        else:
            assert expect.callback_requested is True, scenario.id
            assert expect.ticket.category is not None, scenario.id


def test_the_manifest_is_the_seeded_split_and_covers_every_file_once() -> None:
    split = load_split()
    assert split == split_corpus(CORPUS, split.seed)
    assert json.loads(SPLIT_FILE.read_text(encoding="utf-8")) == split.to_json()
    assert json.loads(SPLIT_FILE.read_text(encoding="utf-8"))["method"] == SPLIT_METHOD
    assert not set(split.tune) & set(split.heldout)
    assert sorted([*split.tune, *split.heldout]) == sorted(BY_ID)


def test_the_halves_are_balanced_by_business_and_difficulty() -> None:
    split = load_split()
    for level in ("plain", "tricky", "hard"):
        tune = sum(1 for i in split.tune if difficulty(BY_ID[i]) == level)
        held = sum(1 for i in split.heldout if difficulty(BY_ID[i]) == level)
        assert abs(tune - held) <= 1, level
    businesses = Counter(s.tenant.slug for s in CORPUS)
    for slug, total in businesses.items():
        tune = sum(1 for i in split.tune if BY_ID[i].tenant.slug == slug)
        assert tune in (total // 2, total - total // 2), slug


def test_the_split_depends_on_the_seed_and_nothing_else() -> None:
    again = split_corpus(list(reversed(CORPUS)), 20261206)
    assert again == split_corpus(CORPUS, 20261206)
    assert split_corpus(CORPUS, 7) != split_corpus(CORPUS, 8)
    assert split_corpus(CORPUS, 7) == split_corpus(CORPUS, 7)


BASE = """
id: base
tenant: {slug: shop, name: Shop, phone_number: "+15550000001", collect: [name, callback_number, reason, email],
         faqs: [{q: "Open on Sundays?", a: No.}]}
caller:
  phone: "+15550000002"
  says_first: My order never arrived.
  facts: {name: Ann Lee, callback_number: "555 000 1111", email: ann@example.com}
expect: {unanswered_questions: 0}
"""


def base() -> Scenario:
    return parse_scenario(BASE)


@pytest.mark.parametrize(
    ("change", "level"),
    [
        ({}, "plain"),
        ({"behaviour": Behaviour(silent_start=True)}, "tricky"),
        (
            {
                "facts": {
                    "name": "Ann Lee",
                    "callback_number": "five five five, oh oh oh, one one one one",
                    "email": "a@b.co",
                }
            },
            "tricky",
        ),
        ({"facts": {"name": "Ann Lee", "callback_number": "555 000 1111"}}, "tricky"),  # no email
        ({"confirms": {"name": "Anne Lee"}}, "tricky"),
        ({"says_first": "Are you open on Sundays?"}, "tricky"),
        ({"asks": ("Are you open on Sundays, and do you deliver?",)}, "tricky"),
        ({"asks": ("Are you open? Do you deliver?",)}, "tricky"),
        ({"asks": ("Are you open on Sundays?",)}, "plain"),
        ({"says_first": "Are you open on Sundays?", "behaviour": Behaviour(wants_human=True)}, "hard"),
    ],
)
def test_difficulty_counts_the_hard_features(change: dict[str, object], level: str) -> None:
    scenario = base()
    scenario = replace(scenario, caller=replace(scenario.caller, **change))  # type: ignore[arg-type]
    assert difficulty(scenario) == level


def test_an_unanswerable_question_makes_a_call_tricky() -> None:
    scenario = base()
    scenario = replace(scenario, expect=replace(scenario.expect, unanswered_questions=1))
    assert difficulty(scenario) == "tricky"


def test_scenario_sets() -> None:
    split = load_split()
    assert [s.id for s in scenario_set("tune")] == sorted(split.tune)
    assert [s.id for s in scenario_set("heldout")] == sorted(split.heldout)
    assert [s.id for s in scenario_set("all")] == sorted(BY_ID)
    one = CORPUS[0].source
    assert [s.id for s in scenario_set(one)] == [CORPUS[0].id]
    with pytest.raises(ScenarioError):
        scenario_set("nowhere/at-all.yaml")


def test_a_split_naming_a_missing_scenario_is_refused(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(BASE, encoding="utf-8")
    manifest = Split(seed=1, tune=("base",), heldout=("gone",)).to_json()
    (tmp_path / "split.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert [s.id for s in scenario_set("tune", corpus_dir=tmp_path)] == ["base"]
    with pytest.raises(ScenarioError) as error:
        scenario_set("heldout", corpus_dir=tmp_path)
    assert str(error.value) == f"the split names scenarios that are not in {tmp_path}: gone"
    (tmp_path / "split.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ScenarioError) as error:
        scenario_set("tune", corpus_dir=tmp_path)
    assert str(error.value).startswith(f"{tmp_path / 'split.json'}: not a readable split manifest")
