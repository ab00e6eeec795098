"""Caller scenarios (format v1): load a YAML file into typed, validated dataclasses.

The format is documented in ``shared/scenarios/README.md``. Validation is
strict, so a typo in a key is an error instead of a check that silently
never runs. Every error names the file and the dotted path of the offending
value, e.g. ``acme.yaml: caller.behaviour[1]: unknown behaviour 'shouts'``.

This module needs neither Django nor a database.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import yaml

FORMAT_VERSION: Final = 1
KNOWN_FIELDS: Final = ("name", "callback_number", "reason", "address", "email", "preferred_time")
# ``reason`` is what ``says_first`` is for; the rest are facts a caller can know.
FACT_FIELDS: Final = ("name", "callback_number", "address", "email", "preferred_time")
PRIORITIES: Final = ("low", "normal", "high", "urgent")
STATUSES: Final = ("new", "open", "pending", "resolved", "closed")
FLAG_BEHAVIOURS: Final = ("silent_start", "interrupts_greeting", "wants_human", "volunteers_all")
COUNT_BEHAVIOURS: Final = ("hangs_up_after",)

_ID_RE: Final = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# Same rule as ``tenants.services.tenant_slug_validate``, so a bad slug fails at load.
_SLUG_RE: Final = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")
_E164_RE: Final = re.compile(r"^\+[1-9]\d{6,14}$")


class ScenarioError(ValueError):
    """A scenario file is missing, not YAML, or does not follow format v1."""


@dataclass(frozen=True, slots=True)
class Faq:
    """One knowledge-base entry of the tenant."""

    q: str
    a: str


@dataclass(frozen=True, slots=True)
class TenantSpec:
    """The business being called; created or updated before the call."""

    slug: str
    name: str
    phone_number: str
    greeting: str = ""
    categories: tuple[str, ...] | None = None  # None: keep the product's default
    urgent_keywords: tuple[str, ...] | None = None
    collect: tuple[str, ...] | None = None
    faqs: tuple[Faq, ...] = ()


@dataclass(frozen=True, slots=True)
class Behaviour:
    """The caller's quirks; all off by default."""

    silent_start: bool = False
    hangs_up_after: int | None = None  # hang up after this many utterances
    interrupts_greeting: bool = False
    wants_human: bool = False
    volunteers_all: bool = False


@dataclass(frozen=True, slots=True)
class CallerSpec:
    """Who calls, what they know and want, and how they behave."""

    phone: str
    says_first: str
    facts: Mapping[str, str] = field(default_factory=dict)
    asks: tuple[str, ...] = ()
    # True: "yes" at read-back; a mapping: correct these fields first.
    confirms: bool | Mapping[str, str] = True
    behaviour: Behaviour = field(default_factory=Behaviour)


@dataclass(frozen=True, slots=True)
class TicketExpect:
    """Expected ticket fields; ``None`` means not checked."""

    caller_name: str | None = None
    callback_number: str | None = None
    category: str | None = None
    priority: Literal["low", "normal", "high", "urgent"] | None = None
    status: Literal["new", "open", "pending", "resolved", "closed"] | None = None
    summary_mentions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Expectations:
    """What the call must produce; ``None`` means not checked."""

    ticket: TicketExpect = field(default_factory=TicketExpect)
    faq_answered: tuple[str, ...] | None = None
    unanswered_questions: int | None = None
    callback_requested: bool | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    """One phone call: the business, the caller and the expected result."""

    id: str
    description: str
    tenant: TenantSpec
    caller: CallerSpec
    expect: Expectations
    source: str = ""  # the file it came from, for messages


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate the scenario at ``path``; raise ``ScenarioError`` saying what is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read scenario: {exc.strerror or exc}") from exc
    return parse_scenario(text, source=str(path))


def load_scenarios(paths: list[str | Path]) -> list[Scenario]:
    """Load several scenarios; directories contribute their ``*.yaml`` files, sorted.

    Ids must be unique across the set, since results are reported by id.
    """
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted([*path.glob("*.yaml"), *path.glob("*.yml")]))
        else:
            files.append(path)
    if not files:
        raise ScenarioError(f"no scenario files in {', '.join(str(p) for p in paths)}")
    scenarios = [load_scenario(f) for f in files]
    seen: dict[str, str] = {}
    for scenario in scenarios:
        if scenario.id in seen:
            raise ScenarioError(f"{scenario.source}: id {scenario.id!r} is also used by {seen[scenario.id]}")
        seen[scenario.id] = scenario.source
    return scenarios


def parse_scenario(text: str, *, source: str = "<scenario>") -> Scenario:
    """Validate YAML ``text`` as a format-v1 scenario; ``source`` prefixes error messages."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # The format's own README writes ``faq_answered: [What are your opening
        # hours?]``, which YAML rejects ("?" ends a plain scalar in a flow
        # list). Quoting such one-line lists is unambiguous, so accept them.
        repaired = _quote_flow_lists(text)
        if repaired == text:
            raise _yaml_error(exc, source) from exc
        try:
            data = yaml.safe_load(repaired)
        except yaml.YAMLError:
            raise _yaml_error(exc, source) from exc
    return _Parser(source).scenario(data)


def _yaml_error(exc: yaml.YAMLError, source: str) -> ScenarioError:
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc)
    return ScenarioError(f"{source}: not valid YAML{where}: {problem}")


_FLOW_LIST_LINE: Final = re.compile(
    r"^(?P<key>\s*(?:- )?[\w-]+:\s*)\[(?P<items>[^\[\]{}\"'#]*)\](?P<rest>\s*(?:#.*)?)$"
)


def _quote_flow_lists(text: str) -> str:
    """Quote the items of one-line flow lists that contain "?" (see ``parse_scenario``)."""
    lines = []
    for line in text.splitlines():
        match = _FLOW_LIST_LINE.match(line)
        if match and "?" in match["items"]:
            items = [item.strip() for item in match["items"].split(",") if item.strip()]
            quoted = ", ".join('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"' for item in items)
            line = f"{match['key']}[{quoted}]{match['rest']}"
        lines.append(line)
    return "\n".join(lines) + ("\n" if text.endswith("\n") else "")


class _Parser:
    """Walks the YAML tree, keeping the dotted path for error messages."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, problem: str) -> ScenarioError:
        return ScenarioError(f"{self.source}: {path}: {problem}" if path else f"{self.source}: {problem}")

    # -- primitives --------------------------------------------------------
    def mapping(self, value: Any, path: str, *, required: set[str], optional: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path or "top level", f"must be a mapping, got {_kind(value)}")
        keys = {str(k) for k in value}
        unknown = sorted(keys - required - optional)
        if unknown:
            allowed = ", ".join(sorted(required | optional))
            raise self.fail(_join(path, unknown[0]), f"unknown key (allowed: {allowed})")
        missing = sorted(required - keys)
        if missing:
            raise self.fail(_join(path, missing[0]), "is required")
        return {str(k): v for k, v in value.items()}

    def text(self, value: Any, path: str, *, allow_empty: bool = False) -> str:
        # YAML reads 5552013344 or 42 as numbers; a caller says them all the same.
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(path, f"must be a string, got {_kind(value)}")
        result = str(value).strip()
        if not result and not allow_empty:
            raise self.fail(path, "must not be empty")
        return result

    def texts(self, value: Any, path: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.fail(path, f"must be a list, got {_kind(value)}")
        return tuple(self.text(item, f"{path}[{i}]") for i, item in enumerate(value))

    def e164(self, value: Any, path: str) -> str:
        number = self.text(value, path)
        if not _E164_RE.match(number):
            raise self.fail(path, f"{number!r} is not an E.164 number like +15550100100")
        return number

    def known_fields(self, value: Any, path: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
        names = self.texts(value, path)
        for i, name in enumerate(names):
            if name not in allowed:
                raise self.fail(f"{path}[{i}]", f"unknown field {name!r} (known: {', '.join(allowed)})")
        return names

    # -- sections ------------------------------------------------------------
    def scenario(self, data: Any) -> Scenario:
        if data is None:
            raise self.fail("", "the file is empty")
        top = self.mapping(data, "", required={"id", "tenant", "caller"}, optional={"description", "expect"})
        scenario_id = self.text(top["id"], "id")
        if not _ID_RE.match(scenario_id):
            raise self.fail("id", f"{scenario_id!r} must be lower-case letters, digits and single hyphens")
        tenant = self.tenant(top["tenant"])
        return Scenario(
            id=scenario_id,
            description=self.text(top.get("description", ""), "description", allow_empty=True),
            tenant=tenant,
            caller=self.caller(top["caller"]),
            expect=self.expect(top.get("expect") or {}, tenant),
            source=self.source,
        )

    def tenant(self, value: Any) -> TenantSpec:
        data = self.mapping(
            value,
            "tenant",
            required={"slug", "name", "phone_number"},
            optional={"greeting", "categories", "urgent_keywords", "collect", "faqs"},
        )
        slug = self.text(data["slug"], "tenant.slug")
        if not _SLUG_RE.match(slug):
            raise self.fail("tenant.slug", f"{slug!r} must be 3-40 lower-case letters, digits and hyphens")
        categories = self.texts(data["categories"], "tenant.categories") if "categories" in data else None
        if categories is not None and not categories:
            raise self.fail("tenant.categories", "must name at least one category")
        faqs = []
        raw_faqs = data.get("faqs") or []
        if not isinstance(raw_faqs, list):
            raise self.fail("tenant.faqs", f"must be a list, got {_kind(raw_faqs)}")
        for i, item in enumerate(raw_faqs):
            path = f"tenant.faqs[{i}]"
            entry = self.mapping(item, path, required={"q", "a"}, optional=set())
            faqs.append(Faq(q=self.text(entry["q"], f"{path}.q"), a=self.text(entry["a"], f"{path}.a")))
        questions = [f.q for f in faqs]
        for i, q in enumerate(questions):
            if q in questions[:i]:
                raise self.fail(f"tenant.faqs[{i}].q", f"{q!r} appears twice")
        return TenantSpec(
            slug=slug,
            name=self.text(data["name"], "tenant.name"),
            phone_number=self.e164(data["phone_number"], "tenant.phone_number"),
            greeting=self.text(data.get("greeting", ""), "tenant.greeting", allow_empty=True),
            categories=categories,
            urgent_keywords=(
                self.texts(data["urgent_keywords"], "tenant.urgent_keywords") if "urgent_keywords" in data else None
            ),
            collect=self.known_fields(data["collect"], "tenant.collect", KNOWN_FIELDS) if "collect" in data else None,
            faqs=tuple(faqs),
        )

    def caller(self, value: Any) -> CallerSpec:
        data = self.mapping(
            value,
            "caller",
            required={"phone", "says_first"},
            optional={"facts", "asks", "confirms", "behaviour"},
        )
        facts_raw = data.get("facts") or {}
        facts_map = self.mapping(facts_raw, "caller.facts", required=set(), optional=set(FACT_FIELDS))
        facts = {name: self.text(v, f"caller.facts.{name}") for name, v in facts_map.items()}
        return CallerSpec(
            phone=self.e164(data["phone"], "caller.phone"),
            says_first=self.text(data["says_first"], "caller.says_first"),
            facts=facts,
            asks=self.texts(data.get("asks") or [], "caller.asks"),
            confirms=self.confirms(data.get("confirms", True)),
            behaviour=self.behaviour(data.get("behaviour") or []),
        )

    def confirms(self, value: Any) -> bool | dict[str, str]:
        if isinstance(value, bool):
            return value
        if not isinstance(value, dict):
            raise self.fail("caller.confirms", f"must be true, false or a mapping of corrections, got {_kind(value)}")
        data = self.mapping(value, "caller.confirms", required=set(), optional=set(FACT_FIELDS))
        if not data:
            raise self.fail("caller.confirms", "a mapping of corrections must correct at least one field")
        return {name: self.text(v, f"caller.confirms.{name}") for name, v in data.items()}

    def behaviour(self, value: Any) -> Behaviour:
        # The documented form is a list; a lone mapping is accepted as a list of one.
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list):
            raise self.fail("caller.behaviour", f"must be a list, got {_kind(value)}")
        items: list[Any] = value
        flags: dict[str, Any] = {}
        known = ", ".join([*FLAG_BEHAVIOURS, *(f"{c}: N" for c in COUNT_BEHAVIOURS)])
        for i, item in enumerate(items):
            path = f"caller.behaviour[{i}]"
            if isinstance(item, str):
                if item in COUNT_BEHAVIOURS:
                    raise self.fail(path, f"{item} needs a count, e.g. '{item}: 2'")
                if item not in FLAG_BEHAVIOURS:
                    raise self.fail(path, f"unknown behaviour {item!r} (known: {known})")
                flags[item] = True
            elif isinstance(item, dict):
                for key, count in item.items():
                    if key in FLAG_BEHAVIOURS and count in (True, None):
                        flags[str(key)] = True
                        continue
                    if key not in COUNT_BEHAVIOURS:
                        raise self.fail(path, f"unknown behaviour {key!r} (known: {known})")
                    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                        raise self.fail(f"{path}.{key}", f"must be a whole number of utterances >= 1, got {count!r}")
                    flags[str(key)] = count
            else:
                raise self.fail(path, f"must be a behaviour name or 'name: N', got {_kind(item)}")
        return Behaviour(**flags)

    def expect(self, value: Any, tenant: TenantSpec) -> Expectations:
        data = self.mapping(
            value,
            "expect",
            required=set(),
            optional={"ticket", "faq_answered", "unanswered_questions", "callback_requested"},
        )
        faq_answered = None
        if "faq_answered" in data:
            faq_answered = self.texts(data["faq_answered"] or [], "expect.faq_answered")
            known = {f.q for f in tenant.faqs}
            for i, q in enumerate(faq_answered):
                if q not in known:
                    raise self.fail(f"expect.faq_answered[{i}]", f"{q!r} is not the q of any entry in tenant.faqs")
        unanswered = data.get("unanswered_questions")
        if unanswered is not None and (
            isinstance(unanswered, bool) or not isinstance(unanswered, int) or unanswered < 0
        ):
            raise self.fail("expect.unanswered_questions", f"must be a whole number >= 0, got {unanswered!r}")
        callback = data.get("callback_requested")
        if callback is not None and not isinstance(callback, bool):
            raise self.fail("expect.callback_requested", f"must be true or false, got {_kind(callback)}")
        return Expectations(
            ticket=self.ticket(data.get("ticket") or {}, tenant),
            faq_answered=faq_answered,
            unanswered_questions=unanswered,
            callback_requested=callback,
        )

    def ticket(self, value: Any, tenant: TenantSpec) -> TicketExpect:
        data = self.mapping(
            value,
            "expect.ticket",
            required=set(),
            optional={"caller_name", "callback_number", "category", "priority", "status", "summary_mentions"},
        )

        def optional_text(key: str) -> str | None:
            return self.text(data[key], f"expect.ticket.{key}") if data.get(key) is not None else None

        priority = optional_text("priority")
        if priority is not None and priority not in PRIORITIES:
            raise self.fail("expect.ticket.priority", f"{priority!r} is not one of {', '.join(PRIORITIES)}")
        status = optional_text("status")
        if status is not None and status not in STATUSES:
            raise self.fail("expect.ticket.status", f"{status!r} is not one of {', '.join(STATUSES)}")
        category = optional_text("category")
        if category is not None and tenant.categories is not None and category not in tenant.categories:
            raise self.fail("expect.ticket.category", f"{category!r} is not in tenant.categories")
        number = optional_text("callback_number")
        if number is not None and not _E164_RE.match(number):
            raise self.fail("expect.ticket.callback_number", f"{number!r} is not an E.164 number like +15552013344")
        return TicketExpect(
            caller_name=optional_text("caller_name"),
            callback_number=number,
            category=category,
            priority=priority,  # type: ignore[arg-type]
            status=status,  # type: ignore[arg-type]
            summary_mentions=self.texts(data.get("summary_mentions") or [], "expect.ticket.summary_mentions"),
        )


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "true/false"}.get(
        type(value), type(value).__name__
    )
