"""Names a caller gives ("my name is ...", "this is ...", or a bare name when asked).

The lexicon of known first names and surnames is ``calls.dialogue.names``.
"""

from __future__ import annotations

import re

from calls.dialogue.extract.text import APOSTROPHES, word_set

# Words that follow "this is" / "it's" / "I'm" far more often than a name does.
NOT_NAME_WORDS = word_set(
    """
    a an the and or but so if then than to of by as at in on for from with about regarding into over under
    my our your his her their its it it's that's there's what's i'd i'll we're you're they're this that these
    those there here what which who when where why how
    i i'm im me we us you he she they them is are was were be been being am do does did done have has had
    not no yes yeah yep okay ok sure fine good great well just really very still also too again now today
    tomorrow tonight morning afternoon evening night calling call called ringing trying looking having getting
    going gonna wondering hoping waiting phoning sorry afraid glad happy worried concerned interested
    desperate stuck home away back out off up down over urgent important serious broken leaking flooding
    blocked running dripping freezing cold hot new old one two three four five six seven eight nine ten
    number phone name email address time all any some every each both either neither quite pretty
    customer client owner tenant landlord homeowner patient member manager company business office
    kind sort bit little lot problem issue question emergency regular first last mister mrs miss ms mr dr
    always never ever already almost about around like can could would will should shall may might must
    bye goodbye hello hi hey thanks thank
    """
)
_TITLES = {"mr", "mrs", "ms", "miss", "mister", "dr", "doctor"}
_STRONG_INTRO = re.compile(
    r"\b(?:my name is|my name's|my names|the name is|the name's|name is|name's|call me|"
    r"my full name is|first name is)\s+",
    re.IGNORECASE,
)
_WEAK_INTRO = re.compile(r"\b(?:this is|it's|it is|i'm|i am|im)\s+", re.IGNORECASE)
_NAME_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*$")
_NAME_STOP_AFTER = word_set("and from at calling here speaking with my i i'm again please thanks")


def title_word(word: str) -> str:
    """Capitalise each part of a name word; keep caller-given inner capitals (McDonald)."""
    if any(c.isupper() for c in word[1:]) and not word.isupper():
        return word[0].upper() + word[1:]
    return "-".join("'".join(p[:1].upper() + p[1:].lower() for p in part.split("'")) for part in word.split("-"))


def _is_cased(text: str) -> bool:
    """True when the transcript uses capitals beyond sentence starts and "I"."""
    sentence_start = True
    for word in re.findall(r"[A-Za-z][A-Za-z']*|[.!?]", text):
        if word in ".!?":
            sentence_start = True
            continue
        if word[0].isupper() and not sentence_start and word not in ("I", "I'm", "I'd", "I'll", "I've"):
            return True
        sentence_start = False
    return False


def _name_words(tail: str, *, max_words: int = 4) -> list[str]:
    """Leading name-like words of ``tail`` (original case), stopping at punctuation or connectors."""
    chunk = re.split(r"[,.;:!?\d]", tail, maxsplit=1)[0]
    words: list[str] = []
    for raw in chunk.split():
        w = raw.strip("\"'()")
        lw = w.lower()
        if not w or lw in _NAME_STOP_AFTER or not _NAME_WORD.match(w):
            break
        if not words and lw in _TITLES:
            continue
        words.append(w)
        if len(words) == max_words:
            break
    while words and words[-1].lower() in NOT_NAME_WORDS:
        words.pop()
    return words


def _plausible(words: list[str], *, strict: bool, cased: bool) -> bool:
    if not words:
        return False
    lowered = [w.lower() for w in words]
    if lowered[0] in NOT_NAME_WORDS or any(len(w) == 1 for w in lowered if w not in ("a", "i")):
        return False
    if strict:
        if cased:
            return words[0][0].isupper()
        # Without capitals to go on, "it's flooding" must not become a name.
        return not any(w in NOT_NAME_WORDS or (len(w) > 5 and w.endswith(("ing", "ed"))) for w in lowered)
    return True


_FILLER = re.compile(r"\b(?:um+|uh+|erm|er|hmm)\b[,.]?\s*", re.IGNORECASE)
_ASKED_NAME_PREFIX = re.compile(
    r"^(?:(?:yes|yeah|yep|sure|okay|ok|um+|uh+|er|so|hi|hello|of course|certainly|right|oh|well|sorry|"
    r"it's|it is|this is|i'm|i am|my name is|my name's|name's|the name is)\b[\s,.!-]*)+",
    re.IGNORECASE,
)


def extract_name(text: str, *, asked: bool = False) -> str | None:
    """The caller's name, title-cased, or None.

    Volunteered names need an introduction ("my name is", "this is", "it's",
    "I'm"); the weak ones ("this is urgent", "it's flooding") are filtered by
    capitals when the transcript has them, else by a list of common words.
    When ``asked`` (the agent just asked for a name) a bare "Maria Gonzalez."
    is accepted too.
    """
    text = _FILLER.sub("", text.translate(APOSTROPHES)).strip()
    text = re.sub(r"\b(Mr|Mrs|Ms|Dr)\.", r"\1", text, flags=re.IGNORECASE)
    cased = _is_cased(text)
    for intro, strict in ((_STRONG_INTRO, False), (_WEAK_INTRO, not asked)):
        for m in intro.finditer(text):
            words = _name_words(text[m.end() :])
            if _plausible(words, strict=strict, cased=cased):
                return " ".join(title_word(w) for w in words)
    if asked:
        bare = _ASKED_NAME_PREFIX.sub("", text)
        words = _name_words(bare)
        if _plausible(words, strict=False, cased=cased):
            return " ".join(title_word(w) for w in words)
    return None


def name_heard_loosely(text: str) -> str:
    """The words after "my name is" even when they do not pass as a name ("Angosi S."), else "".

    Not a value to store: a hint for rebuilding the name once it is spelled,
    since a garbled hearing still sounds like the name.
    """
    text = _FILLER.sub("", text.translate(APOSTROPHES)).strip()
    match = _STRONG_INTRO.search(text)
    return " ".join(_name_words(text[match.end() :])) if match else ""
