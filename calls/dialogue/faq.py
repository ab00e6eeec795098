"""FAQ retrieval by sentence embeddings, and spotting questions in caller speech."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from calls.dialogue.extract.text import stem
from calls.pipeline.protocols import FaqEntry, TextEmbedder

# Cosine similarity (all-MiniLM-L6-v2, max over question and question+answer)
# from which an FAQ answer is given. Measured on 55 caller questions against
# the acceptance tenants' FAQs: true paraphrases mostly score 0.52-0.98
# ("Are you open on Saturdays?" -> opening hours 0.744, before the phrases below), off-FAQ questions
# from the same trade reach 0.50-0.53 ("Do you have any openings this week?"
# 0.516, "Are you accepting new patients?" 0.503), unrelated ones stay low
# ("Can you also repair my personal laptop screen?" -> support hours 0.120).
# 0.52 had the fewest errors; below it the caller gets a follow-up instead of
# a guessed answer. (Scoring the answer alone as well was tried: it lifts
# "Can we pay in installments?" to the financing entry, 0.49, but also "Are
# your plumbers licensed?" to "we have a plumber on call", 0.58.)
MATCH_THRESHOLD = 0.52
# A question of the same specific kind as the entry's ("where", "how much",
# "how long"...) needs less: "Where are you located?" -> "Where is your
# office?" scores 0.45, and a "where" answer to a "where" question is rarely
# wrong.
SAME_KIND_THRESHOLD = 0.42
# The same holds for an entry that uses the word a caller's phrase stands for ("charge anything
# just to come out" -> "fee"): "Do you charge anything just to come out and take a look?" scores
# 0.54 against "Is there a diagnostic fee?" with "(fee)" added, 0.34 without.

# A question about what the call is about ("it", "that"), of a kind only one entry has, needs
# only this: "If I drop it off, how soon would I get it back?" scores 0.26 against "How long
# does a job take?", the tailor's one "how long" entry.
SOLE_KIND_THRESHOLD = 0.2

# Entries a question of several in one breath may fall back to when a closer question takes its first.
MATCH_CANDIDATES = 3


@dataclass(frozen=True, slots=True)
class FaqMatch:
    """The best FAQ entry for a caller question, and its cosine similarity."""

    entry: FaqEntry
    score: float
    named: bool = False  # the question used a phrase for what this entry names (see ``_PARAPHRASES``)


class FaqIndex:
    """Nearest-FAQ lookup; entry embeddings are computed once, at construction.

    Each entry is embedded twice, as its question alone and as question plus
    answer, and a caller question scores the better of the two: the answer
    often holds the words a caller uses ("Saturday", "credit cards").
    """

    def __init__(
        self,
        entries: Sequence[FaqEntry],
        embedder: TextEmbedder,
        threshold: float = MATCH_THRESHOLD,
    ) -> None:
        self.entries: tuple[FaqEntry, ...] = tuple(entries)
        self.threshold = threshold
        self._embedder = embedder
        self._kinds = [question_kind(e.question) for e in self.entries]
        texts_lower = [f"{e.question} {e.answer}".lower() for e in self.entries]
        self._uses = {word: np.array([word in text for text in texts_lower], dtype=bool) for _, word in _PARAPHRASES}
        if self.entries:
            texts = [e.question for e in self.entries] + [f"{e.question} {e.answer}" for e in self.entries]
            vectors = embedder.embed(texts)
            n = len(self.entries)
            self._questions = vectors[:n]
            self._with_answers = vectors[n:]

    def _scores(self, question: str) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
        """Each entry's score, and whether the question used a phrase for what the entry names."""
        # Leading fillers ("And where...", "Hi, do you...") only pull a question away from its entry.
        text = _LEADING_FILLER.sub("", question.strip().lower()) or question
        variants = paraphrased(text)
        queries = self._embedder.embed([text, *(variant for variant, _word in variants)])
        by_query = np.maximum(self._questions @ queries.T, self._with_answers @ queries.T)
        scores: npt.NDArray[np.float32] = by_query[:, 0]
        named = np.zeros(len(self.entries), dtype=bool)
        for column, (_variant, word) in enumerate(variants, start=1):
            # The FAQ's word only leads to the entries that use it: "(financing)" added to "Is
            # there a payment plan?" must not bring it nearer "Do you offer loaner cars?".
            scores = np.where(self._uses[word], np.maximum(scores, by_query[:, column]), scores)
            named |= self._uses[word]
        return scores, named

    def best(self, question: str) -> FaqMatch | None:
        """The closest entry whatever its score; None when the index is empty."""
        ranked = self.ranked(question, 1)
        return ranked[0] if ranked else None

    def ranked(self, question: str, limit: int) -> list[FaqMatch]:
        """The ``limit`` closest entries, best first, scored exactly like :meth:`best` (ties keep entry order)."""
        if not self.entries or not question.strip() or limit <= 0:
            return []
        scores, named = self._scores(question)
        order = np.argsort(-scores, kind="stable")[:limit]
        return [
            FaqMatch(entry=self.entries[int(i)], score=float(scores[int(i)]), named=bool(named[int(i)])) for i in order
        ]

    def match(self, question: str) -> FaqMatch | None:
        """The closest entry if it clears the threshold, else None.

        The threshold is lower for a question of the entry's kind, or one that
        used a phrase for what the entry names; such an entry is preferred to
        a closer one that does not name it ("can't pay for the whole thing up
        front" is about financing, however near "Do you clean panels?").
        """
        cleared = [found for found in self.ranked(question, MATCH_CANDIDATES) if self._clears(question, found)]
        return next((found for found in cleared if found.named), cleared[0] if cleared else None)

    def match_in_context(self, question: str, context: str) -> FaqMatch | None:
        """A question that points back at what the call is about ("How long will he need to stay?").

        Asked with ``context`` (the caller's reason), it matches an entry of
        its own specific kind only: the context alone would pull any question
        to the entry about the reason. Failing that, the one entry of its kind
        answers it if it is not far off (``SOLE_KIND_THRESHOLD``).
        """
        kind = question_kind(question)
        if not (kind and context.strip() and POINTS_BACK.search(question.lower())):
            return None
        found = self.best(f"{context.strip()} {question.strip()}")
        if found is not None and self._kinds[self.entries.index(found.entry)] == kind and found.score >= self.threshold:
            return found
        # The business's only answer of that kind: asked at a guitar shop about the guitar just
        # described, "Roughly how long would I be without it?" is asking how long a repair
        # takes (0.26 against "How long does a repair take?"), whatever else the FAQ holds.
        sole = [i for i, entry_kind in enumerate(self._kinds) if entry_kind == kind]
        if len(sole) != 1 or not _about(self.entries[sole[0]].question, context):
            return None
        scores, named = self._scores(question)
        index = sole[0]
        if scores[index] < SOLE_KIND_THRESHOLD:
            return None
        return FaqMatch(entry=self.entries[index], score=float(scores[index]), named=bool(named[index]))

    def match_each(self, questions: Sequence[str]) -> list[FaqMatch | None]:
        """One entry per question asked in one breath, each entry for one question at most.

        Two questions asked together are two things: when both come closest
        to one entry ("Do you sell used cars, and can I pay by credit car?"
        both nearest "loaner cars"), the closer keeps it and the other takes
        its next entry that clears the threshold, if any. Entries a question
        names go first, as in :meth:`match`.
        """
        pairs = [
            (found.score, index, found)
            for index, question in enumerate(questions)
            for found in self.ranked(question, MATCH_CANDIDATES)
            if self._clears(question, found)
        ]
        matches: list[FaqMatch | None] = [None] * len(questions)
        taken: set[int] = set()  # entries by position: ids need not be unique to the index
        for _score, index, found in sorted(pairs, key=lambda pair: (not pair[2].named, -pair[0], pair[1])):
            entry = self.entries.index(found.entry)
            if matches[index] is None and entry not in taken:
                matches[index] = found
                taken.add(entry)
        return matches

    def _clears(self, question: str, found: FaqMatch) -> bool:
        if _HOLIDAY.search(question.lower()) and not _HOLIDAY.search(
            f"{found.entry.question} {found.entry.answer}".lower()
        ):
            # Opening hours that say nothing of holidays do not say whether one is open: "Are you open
            # on the Fourth of July?" scored 0.51 heard as written and 0.53 heard as "4th".
            return False
        kind = question_kind(question)
        same_kind = bool(kind) and kind == self._kinds[self.entries.index(found.entry)]
        return found.score >= (SAME_KIND_THRESHOLD if same_kind or found.named else self.threshold)


_HOLIDAY = re.compile(
    r"\b(?:holidays?|christmas|xmas|thanksgiving|easter|new year'?s?|(?:4th|fourth) of july|independence day"
    r"|labou?r day|memorial day|boxing day)\b"
)
_LEADING_FILLER = re.compile(
    r"^(?:(?:hi|hello|hey|oh|um+|uh+|er|so|and|also|okay|ok|yeah|yes|well|sorry|just|one more thing|"
    r"another thing|quick question|one last thing|actually|then|roughly|approximately|about)\b[\s,.!-]*)+",
)
_QUESTION_START = re.compile(
    r"^(?:(?:who|whom|whose|what|what's|whats|which|when|where|where's|why|how|how's)\b"
    # An auxiliary only counts before its subject: "have a good day" and
    # "will do" are not questions.
    r"|(?:do|does|did|don't|doesn't|are|aren't|is|isn't|was|were|can|can't|could|would|will|won't|"
    r"should|shall|may|might)\s+(?:you|i|we|they|he|she|it|there|your|my|our|the|this|that|"
    r"these|those|someone|somebody|anyone|anybody|a|an)\b)"
)
_ASKING_CLAUSE = re.compile(
    r"^(?:do|does|did|are|is|can|could|would|will|should)\s+(?:you|we|they|it|there|that|this|he|she)\b"
)
_EMBEDDED_QUESTION = re.compile(
    r"\b(?:i was wondering|i wonder|i'd like to know|i would like to know|i want to know|i wanted to know|"
    r"i wanted to ask|i want to ask|can you tell me|could you tell me|do you know|any idea|"
    r"i have a question about|my question is)\b"
)


# Words callers use for what a business's FAQ names otherwise, which the embedding does not bring
# close enough ("Can we pay in installments?" scores 0.45 against "Do you offer financing?"). A
# question with one is also scored with the FAQ's word added, and keeps the better score.
_PARAPHRASES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"\b(?:instal?l?ments?|payment plans?|monthly payments?"
            r"|pay (?:it |for it )?(?:monthly|over time|in parts)|pay (?:it )?off over time"
            r"|(?:can't|cannot|can not) (?:afford to )?pay (?:for )?(?:it|the whole thing|everything|all of it|the lot)"
            r"(?: all)? (?:up ?front|at once|in one go)|spread (?:out )?the (?:cost|payments?))\b"
        ),
        "financing",
    ),
    (re.compile(r"\b(?:towns?|cities|city|suburbs?|neighbou?rhoods?|zip ?codes?|postcodes?)\b"), "areas"),
    # What it costs for someone to come and look: a call-out, visit or diagnostic fee.
    (
        re.compile(
            r"\b(?:charge|charges|cost|costs|pay|free)\b.*\b(?:(?:come|coming) (?:out|over|by|round|around)"
            r"|(?:take|taking|have|having) a look|look at (?:it|them|this)|call[- ]?outs?|visits?)\b"
        ),
        "fee",
    ),
    # Meeting someone before it is booked: a consultation.
    (
        re.compile(
            r"\b(?:sit down|meet (?:with )?(?:someone|somebody|you|one of)|talk (?:it )?(?:through|over)"
            r"|plan (?:it|everything|things)(?: all)? out)\b"
        ),
        "consultation",
    ),
    # When one may come in or get in: the hours.
    (
        re.compile(
            r"\b(?:get in|get into|come in|come by|drop (?:by|in|off)|access|open)\b.*"
            r"\b(?:late|early|evenings?|nights?|mornings?|weekends?|sundays?|saturdays?"
            r"|(?:after|before) (?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|work|dark))\b"
        ),
        "hours",
    ),
    # Bringing it to the caller: a delivery.
    (
        re.compile(
            r"\b(?:bring|send) (?:it|them|this|those|that|my \w+) (?:over|round|around|out|to)\b"
            r"|\bdrop (?:it|them) off (?:at|to) (?:my|our|the house)\b"
        ),
        "deliver",
    ),
    # How far ahead to say so: the notice.
    (re.compile(r"\b(?:warning|heads[- ]up|in advance|how far ahead|ahead of time)\b"), "notice"),
    # What it costs, in the words of someone bracing for it.
    (re.compile(r"\b(?:set (?:me|us) back|damage be)\b"), "how much"),
    # Stopping a membership or plan for a while: a freeze.
    (re.compile(r"\b(?:pause|put (?:it|my \w+|the \w+) on hold|suspend)\b"), "freeze"),
)


def paraphrased(question: str) -> list[tuple[str, str]]:
    """``question`` with the FAQ's word for what it asks about added, and the word, per paraphrase found."""
    lowered = question.lower()
    return [(f"{question} ({word})", word) for pattern, word in _PARAPHRASES if pattern.search(lowered)]


def is_question(text: str) -> bool:
    """Whether an utterance asks something (Whisper usually, but not always, adds "?")."""
    t = text.strip().lower().replace("\u2019", "'")
    if not t:
        return False
    if t.endswith("?"):
        return True
    if _EMBEDDED_QUESTION.search(t):
        return True
    # The question may come last, after what it is about: "The operation is next Monday, is that
    # enough warning to pause it." (no "?" from the recognizer).
    # Only an auxiliary before its subject: a last clause on "when"/"where" is mostly a statement's
    # ("My pipe burst, when I came home.").
    if _ASKING_CLAUSE.match(t.rsplit(",", 1)[-1].strip()):
        return True
    return bool(_QUESTION_START.match(_LEADING_FILLER.sub("", t)))


# Specific kinds of question, by their opening words; "do you..." questions
# have no kind (their subject is everything).
_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("where", re.compile(r"^where\b|^what(?:'s| is) (?:your|the) (?:address|location)\b")),
    ("when", re.compile(r"^when\b|^what time\b|^what (?:days?|hours)\b")),
    # Before "how much" and "how many": "how many days" and "how much time" ask how long.
    (
        "how long",
        re.compile(r"^how (?:long|soon|quickly)\b|^how many (?:days|weeks|hours|minutes|months)\b|^how much time\b"),
    ),
    ("how often", re.compile(r"^how often\b")),
    ("ages", re.compile(r"^how (?:old|young)\b|^what ages?\b|^what age range\b")),
    (
        "how much",
        re.compile(
            r"^how much\b|^what (?:do|does|would|will) (?:you|it) (?:charge|cost)\b"
            r"|^what(?:'s| is) the (?:cost|price|fee)\b"
            r"|^what (?:would|will|does|might) (?:that|it|this) (?:cost|set (?:me|us) back)\b"
        ),
    ),
    ("how many", re.compile(r"^how many\b")),
    ("which", re.compile(r"^which\b")),
)


def question_kind(text: str) -> str:
    """The specific kind of a question ("where", "how much", ...), or "" for any other."""
    t = _LEADING_FILLER.sub("", text.strip().lower().replace("\u2019", "'"))
    # "If I drop it off, how soon...?", "And once the permits come through, how many days...?"
    for clause in (t, t.rsplit(",", 1)[-1].strip()):
        kind = next((kind for kind, pattern in _KINDS if pattern.match(clause)), "")
        if kind:
            return kind
    return ""


# What an entry's question may speak of and still be about any job of the business.
_GENERIC_SUBJECT = frozenset(
    (
        "how", "long", "much", "many", "often", "soon", "quickly", "what", "when", "where", "which", "who",
        "old", "young", "age", "ages", "time", "a", "an", "the", "is", "are", "does", "do", "it", "take",
        "takes", "usually", "normally", "typically", "job", "jobs", "repair", "repairs", "work", "service",
        "services", "visit", "visits", "appointment", "appointments", "order", "orders", "one",
    )
)  # fmt: skip


def _about(entry_question: str, context: str) -> bool:
    """Whether an entry's question is about any job, or about the one in ``context``.

    "How long does a job take?" is about any job; "How much is a tuning?" is
    about a piano "badly out of tune"; "How much is a nail trim?" is not about
    a full groom.
    """
    said = {stem(w) for w in re.findall(r"[a-z]+", context.lower())}
    subject = [w for w in re.findall(r"[a-z]+", entry_question.lower()) if w not in _GENERIC_SUBJECT]
    return all(stem(w) in said for w in subject if len(w) > 2)


# A question whose subject is something said before: "Can you take that?", "How long will he need to stay?"
POINTS_BACK = re.compile(r"\b(?:he|she|it|they|him|her|them|this|that|these|those|his|its|their)\b")


# Where one breath holds a second question: "..., and which towns do you
# cover?", "... or do I need to book?" stays whole (an alternative, one question).
# The recognizer often hears that "and" as "in" ("..., in which towns...").
_JOINT = re.compile(r"(?:,\s*|\s+)(?:and|also|plus|but)\s+|,\s*in\s+(?=wh|how\b)|,\s+|\?\s+")


def split_questions(sentence: str) -> list[str]:
    """The questions of one sentence: "Do you come out on Saturdays, and which towns do you cover?" -> two.

    A part is split off only when both sides are questions on their own, so
    "Can I just walk in, or do I need to book?" and "If I book today, when can
    you come?" stay whole.
    """
    parts: list[str] = []
    rest = sentence.strip()
    start = 0
    for joint in _JOINT.finditer(rest):
        left, right = rest[start : joint.start()], rest[joint.end() :]
        if is_question(_LEADING_FILLER.sub("", left.strip().lower())) and _QUESTION_START.match(
            _LEADING_FILLER.sub("", right.lower())
        ):
            parts.append(left.strip().rstrip(",") + "?")
            start = joint.end()
    parts.append(rest[start:].strip())
    return [p for p in parts if p.strip(" ?,.")]


# Only a spoken "and", "also" or "plus" joins a request to a question: a bare comma mostly
# joins clauses of one thought ("Hi, could somebody...").
_AND_JOINT = re.compile(r",?\s+(?:and|also|plus)\s+")


def request_and_question(sentence: str) -> tuple[str, str] | None:
    """A request and a question asked in one breath, when the request is no question as heard.

    "Could somebody bring them over, and do you take Medicaid?" splits in
    :func:`split_questions`; heard as "Good somebody, bring them over..., and
    do you take Medicaid?", its first half is no question, and only this
    finds the second. The caller decides whether the first half is for the FAQ.
    """
    for joint in _AND_JOINT.finditer(sentence):
        left, right = sentence[: joint.start()].strip(), sentence[joint.end() :].strip()
        if len(left.split()) >= 3 and _QUESTION_START.match(_LEADING_FILLER.sub("", right.lower())):
            return left.rstrip(",") + "?", right
    return None
