"""Caller scenarios (format v1): loading, validating, and checking ``expect`` against stored calls."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from voicedesk.simulator.expect import StoredCall, StoredTicket, check_expectations
from voicedesk.simulator.scenario import (
    Behaviour,
    CallerSpec,
    Expectations,
    Faq,
    Scenario,
    ScenarioError,
    TenantSpec,
    TicketExpect,
    load_scenario,
    load_scenarios,
    parse_scenario,
)

SHARED_SCENARIOS = Path(__file__).resolve().parents[4] / "shared" / "scenarios"

FULL = """
id: acme-leak-basic
description: Kitchen sink leak.
tenant:
  slug: acme
  name: Acme Plumbing & Heating
  phone_number: "+15550100100"
  greeting: "Thanks for calling Acme."
  categories: [leak, general]
  urgent_keywords: [flood, "no heat"]
  collect: [name, callback_number, reason]
  faqs:
    - q: What are your opening hours?
      a: Monday to Friday.
caller:
  phone: "+15557654321"
  says_first: "Hi, my kitchen sink is leaking."
  facts:
    name: Maria Gonzalez
    callback_number: 555 201 3344
    address: 42 Oak Street
  asks:
    - Are you open on Saturdays?
  confirms:
    callback_number: "555 201 3345"
  behaviour:
    - silent_start
    - hangs_up_after: 3
expect:
  ticket:
    caller_name: Maria Gonzalez
    callback_number: "+15552013344"
    category: leak
    priority: high
    status: new
    summary_mentions: [sink, leak]
  faq_answered: ["What are your opening hours?"]
  unanswered_questions: 0
  callback_requested: true
"""

MINIMAL = """
id: minimal
tenant: {slug: acme, name: Acme, phone_number: "+15550100100"}
caller: {phone: "+15557654321", says_first: Hello.}
"""


def test_parses_every_section_into_typed_values() -> None:
    assert parse_scenario(FULL, source="full.yaml") == Scenario(
        id="acme-leak-basic",
        description="Kitchen sink leak.",
        tenant=TenantSpec(
            slug="acme",
            name="Acme Plumbing & Heating",
            phone_number="+15550100100",
            greeting="Thanks for calling Acme.",
            categories=("leak", "general"),
            urgent_keywords=("flood", "no heat"),
            collect=("name", "callback_number", "reason"),
            faqs=(Faq(q="What are your opening hours?", a="Monday to Friday."),),
        ),
        caller=CallerSpec(
            phone="+15557654321",
            says_first="Hi, my kitchen sink is leaking.",
            facts={"name": "Maria Gonzalez", "callback_number": "555 201 3344", "address": "42 Oak Street"},
            asks=("Are you open on Saturdays?",),
            confirms={"callback_number": "555 201 3345"},
            behaviour=Behaviour(silent_start=True, hangs_up_after=3),
        ),
        expect=Expectations(
            ticket=TicketExpect(
                caller_name="Maria Gonzalez",
                callback_number="+15552013344",
                category="leak",
                priority="high",
                status="new",
                summary_mentions=("sink", "leak"),
            ),
            faq_answered=("What are your opening hours?",),
            unanswered_questions=0,
            callback_requested=True,
        ),
        source="full.yaml",
    )


def test_optional_sections_default_to_not_checked() -> None:
    scenario = parse_scenario(MINIMAL)
    assert scenario.tenant == TenantSpec(slug="acme", name="Acme", phone_number="+15550100100")
    assert scenario.caller == CallerSpec(phone="+15557654321", says_first="Hello.")
    assert scenario.caller.confirms is True
    assert scenario.expect == Expectations()
    assert scenario.description == ""


def test_all_shared_scenarios_load() -> None:
    scenarios = load_scenarios([SHARED_SCENARIOS])
    assert len(scenarios) >= 10
    by_id = {s.id: s for s in scenarios}
    assert by_id["acme-hangs-up-early"].caller.behaviour == Behaviour(hangs_up_after=1)
    assert by_id["acme-corrects-number"].caller.confirms == {"callback_number": "555 867 5390"}
    assert by_id["brightsmile-appointment"].caller.facts["email"] == "sofia.rossi@example.com"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("id: acme-leak-basic", "id: Acme_Leak"), "full.yaml: id: 'Acme_Leak' must be lower-case letters"),
        (("  slug: acme", "  slug: A"), "full.yaml: tenant.slug: 'A' must be 3-40 lower-case letters"),
        (
            ('  phone_number: "+15550100100"', "  phone_number: 5550100100"),
            "full.yaml: tenant.phone_number: '5550100100' is not an E.164 number",
        ),
        (
            ("  collect: [name, callback_number, reason]", "  collect: [name, shoe_size]"),
            "full.yaml: tenant.collect[1]: unknown field 'shoe_size'",
        ),
        (
            ("    - q: What are your opening hours?\n", "    - question: What?\n"),
            "full.yaml: tenant.faqs[0].question: unknown key (allowed: a, q)",
        ),
        (("    address: 42 Oak Street", "    shoe: 42"), "full.yaml: caller.facts.shoe: unknown key"),
        (("    - silent_start", "    - shouts"), "full.yaml: caller.behaviour[0]: unknown behaviour 'shouts'"),
        (
            ("    - hangs_up_after: 3", "    - hangs_up_after: 0"),
            "full.yaml: caller.behaviour[1].hangs_up_after: must be a whole number of utterances >= 1, got 0",
        ),
        (
            ("    - hangs_up_after: 3", "    - hangs_up_after"),
            "full.yaml: caller.behaviour[1]: hangs_up_after needs a count, e.g. 'hangs_up_after: 2'",
        ),
        (
            ("    priority: high", "    priority: critical"),
            "full.yaml: expect.ticket.priority: 'critical' is not one of low, normal, high, urgent",
        ),
        (("    status: new", "    status: done"), "full.yaml: expect.ticket.status: 'done' is not one of new, open"),
        (
            ("    category: leak", "    category: roofing"),
            "full.yaml: expect.ticket.category: 'roofing' is not in tenant.categories",
        ),
        (
            ('  faq_answered: ["What are your opening hours?"]', '  faq_answered: ["Do you sell cake?"]'),
            "full.yaml: expect.faq_answered[0]: 'Do you sell cake?' is not the q of any entry in tenant.faqs",
        ),
        (
            ("  unanswered_questions: 0", "  unanswered_questions: some"),
            "full.yaml: expect.unanswered_questions: must be a whole number >= 0, got 'some'",
        ),
        (
            ("  callback_requested: true", "  callback_requested: maybe"),
            "full.yaml: expect.callback_requested: must be true or false, got a string",
        ),
        (
            ("  callback_requested: true", "  callback_requsted: true"),
            "full.yaml: expect.callback_requsted: unknown key",
        ),
        (('  says_first: "Hi, my kitchen sink is leaking."\n', ""), "full.yaml: caller.says_first: is required"),
        (
            ('  confirms:\n    callback_number: "555 201 3345"', "  confirms: sometimes"),
            "full.yaml: caller.confirms: must be true, false or a mapping of corrections, got a string",
        ),
    ],
)
def test_malformed_scenarios_say_where_and_what(change: tuple[str, str], message: str) -> None:
    old, new = change
    assert old in FULL
    with pytest.raises(ScenarioError) as info:
        parse_scenario(FULL.replace(old, new, 1), source="full.yaml")
    assert str(info.value).startswith(message)


def test_not_yaml_gives_the_line() -> None:
    with pytest.raises(ScenarioError, match=r"^bad\.yaml: not valid YAML \(line 3, column 1\): expected ',' or ']'"):
        parse_scenario("id: x\ntenant: [unclosed\n", source="bad.yaml")


def test_unquoted_questions_in_a_flow_list_as_the_readme_writes_them() -> None:
    text = FULL.replace(
        '  faq_answered: ["What are your opening hours?"]', "  faq_answered: [What are your opening hours?]  # ok"
    )
    assert parse_scenario(text).expect.faq_answered == ("What are your opening hours?",)


def test_empty_and_non_mapping_files() -> None:
    with pytest.raises(ScenarioError, match=r"^e\.yaml: the file is empty$"):
        parse_scenario("", source="e.yaml")
    with pytest.raises(ScenarioError, match=r"^l\.yaml: top level: must be a mapping, got a list$"):
        parse_scenario("- a\n- b\n", source="l.yaml")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"cannot read scenario: No such file or directory"):
        load_scenario(tmp_path / "nope.yaml")


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(MINIMAL)
    (tmp_path / "b.yaml").write_text(MINIMAL)
    with pytest.raises(ScenarioError, match=r"b\.yaml: id 'minimal' is also used by .*a\.yaml"):
        load_scenarios([tmp_path])


def test_the_readme_example_parses() -> None:
    readme = (SHARED_SCENARIOS / "README.md").read_text(encoding="utf-8")
    example = readme.split("```yaml", 1)[1].split("```", 1)[0]
    scenario = parse_scenario(example, source="README.md")
    assert scenario.id == "acme-leak-basic"
    assert scenario.caller.facts == {
        "name": "Maria Gonzalez",
        "callback_number": "555 201 3344",
        "address": "42 Oak Street",
    }
    assert scenario.expect.faq_answered == ("What are your opening hours?",)
    assert scenario.expect.callback_requested is True


# -- checking expectations against what the product stored ----------------------------------


def stored_call(**ticket_changes: object) -> StoredCall:
    ticket = StoredTicket(
        number="T-7",
        caller_name="maria  gonzalez.",
        callback_number="(555) 201-3344",
        category="leak",
        priority="high",
        status="new",
        summary="Leak: My kitchen sink is leaking all over the floor.",
        faq_answered=("What are your opening hours?",),
        unanswered_questions=0,
        callback_requested=True,
    )
    return StoredCall(
        call_id=3,
        status="completed",
        end_reason="agent_hangup",
        captured={"frames_sent": 100, "frames_late": 1},
        ticket=replace(ticket, **ticket_changes),  # type: ignore[arg-type]
    )


def test_a_matching_call_has_no_mismatches() -> None:
    expect = parse_scenario(FULL).expect
    stored = stored_call()
    assert check_expectations(expect, stored) == []
    assert (stored.frames_sent, stored.frames_late) == (100, 1)


def test_every_mismatch_is_reported_readably() -> None:
    expect = parse_scenario(FULL).expect
    stored = stored_call(
        caller_name="Marie Gonzales",
        callback_number="+15552013345",
        category="general",
        priority="normal",
        status="open",
        summary="Something about a sink.",
        faq_answered=(),
        unanswered_questions=2,
        callback_requested=False,
    )
    assert check_expectations(expect, stored) == [
        "ticket.caller_name: expected 'Maria Gonzalez', got 'Marie Gonzales'",
        "ticket.callback_number: expected '+15552013344', got '+15552013345'",
        "ticket.category: expected 'leak', got 'general'",
        "ticket.priority: expected 'high', got 'normal'",
        "ticket.status: expected 'new', got 'open'",
        "ticket.summary_mentions: ['leak'] not in summary 'Something about a sink.'",
        "faq_answered: expected ['What are your opening hours?'], got []",
        "unanswered_questions: expected 0, got 2",
        "callback_requested: expected True, got False",
    ]


def test_faq_answered_is_an_exact_set() -> None:
    expect = parse_scenario(FULL).expect
    stored = stored_call(faq_answered=("What are your opening hours?", "What are your opening hours?", "Extra?"))
    assert check_expectations(expect, stored) == [
        "faq_answered: expected ['What are your opening hours?'], got "
        "['Extra?', 'What are your opening hours?', 'What are your opening hours?']"
    ]


def test_no_call_or_no_ticket() -> None:
    expect = parse_scenario(FULL).expect
    assert check_expectations(expect, None, call_sid="CA1") == ["the product stored no call with CallSid CA1"]
    no_ticket = replace(stored_call(), ticket=None, status="abandoned", end_reason="caller_hangup")
    assert check_expectations(expect, no_ticket) == [
        "no ticket for call 3 within 30 s (call status 'abandoned', end reason 'caller_hangup'); "
        "is a Dramatiq worker running?"
    ]


def test_unchecked_keys_are_ignored() -> None:
    stored = stored_call(caller_name="Someone Else", category="general")
    assert check_expectations(parse_scenario(MINIMAL).expect, stored) == []
