"""The rule language of the speech/music caption filter, and its matcher.

A rule file (the default: `genau_core/recap/data/speech_music_rules.txt`; a user's through
`genau recap --keywords FILE`) holds one rule per line; blank lines and lines starting with
'#' are ignored. A plain word or phrase per line (the old keyword-list format) is a valid file.

    talking                                     keyword: a caption containing it is dropped
    sing/sings/singing unless-actor @animal     ... unless the actor of that word is in a class
    hum/hums/humming if-actor @human            ... only when its actor is in a class
    !@animal song/songs                         exception: keyword words inside a match of this
                                                pattern do not count ("bird song", "whale songs")
    @human: man men woman women someone         a word class (more lines with the same name add
                                                words); used in patterns and actor conditions
    actors @human @animal @thing                the classes whose words can be actors (default:
                                                every class named in some actor condition)

Patterns are tokens matched against the caption's words (lower case; a possessive 's and
punctuation are removed, so "bird's" is "bird" and "hip-hop" is "hip hop"): `word`, `a/b/c`
(any of them), `@class` (any word of the class), `*` (any one word); a `?` suffix makes a token
optional. Class look-ups also accept regular plurals of the class's words (bird -> birds).

The actor of a keyword occurrence (who sings, what hums), first rule that applies:
 1. "<keyword> of" + up to 3 more words + an actor word: that word ("the song of a bird");
 2. a keyword ending in -ing directly followed by an actor word: that word ("singing birds");
 3. a keyword used as a noun has no actor before it. Going back over at most 3 determiners
    (a, the, some, ...) and plain words (no actor, auxiliary, -ly adverb, preposition or
    conjunction), the keyword is a noun when that reaches a conjunction after at least one
    skipped word ("rain and a steady beat", "rain and distant singing"), "to" after a skipped
    determiner ("taps his foot to a beat"), or, for an -ing word, a preposition right before it
    ("shakes with singing");
 4. the nearest actor word before the keyword; a word that is the object of a preposition ("in
    a car") is skipped, except right before an -ing keyword (auxiliaries and -ly adverbs may
    stand between): "a man in a car hums": man; "a dog barks at a man singing": man;
 5. none: unknown. `unless-actor` keywords then count, `if-actor` keywords do not.

A user file replaces the default rules; a class it uses but does not define comes from the
default file, and so do the actor classes when it has no `actors` line, so `sings unless-actor
@animal` works in a file of its own (a woman who sings is still the actor, not a bird before her).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Iterable, Mapping

from genau_core.errors import GenauBenchError

DEFAULT_RULES_FILE = "speech_music_rules.txt"

PREPOSITIONS = frozenset(
    "in on at from with near by inside under over through into behind across along around beside "
    "against onto outside above below toward towards during between within beneath among off".split()
)
AUXILIARIES = frozenset(
    "is are was were be been being am has have had keeps keep kept starts start started begins begin began "
    "continues continue continued to then also still again too sometimes often always never who that which".split()
)
DETERMINERS = frozenset(
    "a an the some this that these those his her its their another any each every several many".split()
)
CONJUNCTIONS = frozenset("and or but nor while as then before after when until followed so".split())
_IRREGULAR = {
    "men": "man", "women": "woman", "children": "child", "people": "person", "geese": "goose", "mice": "mouse",
    "teeth": "tooth", "feet": "foot", "wolves": "wolf", "calves": "calf", "leaves": "leaf", "knives": "knife",
}  # fmt: skip
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_CLASS_DEF = re.compile(r"^@([a-z_][a-z0-9_]*)\s*:(.*)$")
_CLASS_REF = re.compile(r"^@([a-z_][a-z0-9_]*)$")
_CONDITIONS = ("unless-actor", "if-actor")


class RuleError(GenauBenchError, ValueError):
    """A rule that cannot be compiled; the message names the file, the line and the reason."""


def tokenize(text: str) -> list[str]:
    """Lower-cased words; a possessive 's is dropped ("ship's horn" -> ship, horn)."""
    out = []
    for m in _WORD.finditer(text.lower().replace("\u2019", "'")):
        w = m.group(0)
        out.append(w.removesuffix("'s"))
    return out


def _is_ing(word: str) -> bool:
    """A present participle / gerund ("singing", "humming"), not "sing", "ring" or "thing"."""
    return word.endswith("ing") and any(v in word[:-3] for v in "aeiouy")


def _is_adverb(word: str) -> bool:
    return len(word) > 4 and word.endswith("ly")


def _bases(word: str) -> tuple[str, ...]:
    """The word and the singulars it may be the plural of."""
    out = [word]
    if word in _IRREGULAR:
        out.append(_IRREGULAR[word])
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        out.append(word[:-1])
        if word.endswith("es"):
            out.append(word[:-2])
        if word.endswith("ies"):
            out.append(word[:-3] + "y")
    return tuple(out)


@dataclass(frozen=True)
class Token:
    words: frozenset[str] = frozenset()  # literal alternatives
    cls: str = ""  # a class name, or "" (literal / wildcard)
    any_word: bool = False
    optional: bool = False


@dataclass(frozen=True)
class Rule:
    text: str  # the line as written (normalised whitespace): the drop reason names it
    where: str  # file:line
    pattern: tuple[Token, ...]
    exception: bool = False
    unless: tuple[str, ...] = ()  # unless-actor classes
    only: tuple[str, ...] = ()  # if-actor classes


@dataclass(frozen=True)
class Hit:
    """Why a caption is dropped: the words that matched, the rule, and the actor it found."""

    keyword: str  # the caption's words that matched ("sings")
    rule: str
    actor: str = ""  # the actor word, "" when unknown or not asked
    actor_classes: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        text = f"'{self.keyword}' (rule '{self.rule}'"
        if self.actor:
            text += f"; actor '{self.actor}': " + ", ".join(f"@{c}" for c in self.actor_classes)
        elif any(k in self.rule for k in _CONDITIONS):
            text += "; actor unknown"
        return text + ")"


def _parse_token(raw: str, classes: Mapping[str, frozenset[str]], where: str) -> Token:
    optional = raw.endswith("?") and len(raw) > 1
    body = raw[:-1] if optional else raw
    if body == "*":
        return Token(any_word=True, optional=optional)
    m = _CLASS_REF.match(body)
    if m:
        if m.group(1) not in classes:
            raise RuleError(
                f"{where}: unknown class @{m.group(1)} (defined: {', '.join('@' + c for c in sorted(classes))})"
            )
        return Token(cls=m.group(1), optional=optional)
    words = [w for w in body.split("/") if w]
    bad = [w for w in words if tokenize(w) != [w]]
    if not words or bad:
        raise RuleError(
            f"{where}: {raw!r} is not a word, a/b alternatives, @class or * (lower-case words without punctuation)"
        )
    return Token(words=frozenset(words), optional=optional)


def parse_lines(lines: Iterable[tuple[str, str]], base_classes: Mapping[str, frozenset[str]] | None = None):
    """(where, line) pairs -> (rules, classes, actor classes or None)."""
    items = [(where, " ".join(line.split())) for where, line in lines]
    items = [(w, t) for w, t in items if t and not t.startswith("#")]
    own: dict[str, set[str]] = {}
    for where, text in items:
        m = _CLASS_DEF.match(text.lower())
        if m:
            words = m.group(2).split()
            bad = [w for w in words if tokenize(w) != [w]]
            if not words or bad:
                raise RuleError(f"{where}: class @{m.group(1)} needs plain lower-case words, got {bad or 'none'}")
            own.setdefault(m.group(1), set()).update(words)
    classes = dict(base_classes or {})
    classes.update({k: frozenset(v) for k, v in own.items()})
    rules: list[Rule] = []
    actors: tuple[str, ...] | None = None
    for where, text in items:
        low = text.lower()
        if _CLASS_DEF.match(low):
            continue
        parts = low.split()
        if parts[0] == "actors":
            names = []
            for p in parts[1:]:
                m = _CLASS_REF.match(p)
                if not m or m.group(1) not in classes:
                    raise RuleError(f"{where}: 'actors' takes defined @classes, got {p!r}")
                names.append(m.group(1))
            actors = tuple(names)
            continue
        exception = parts[0].startswith("!")
        if exception:
            parts[0] = parts[0][1:]
            if not parts[0]:
                parts = parts[1:]
        cond = next((i for i, p in enumerate(parts) if p in _CONDITIONS), len(parts))
        pat_words, cond_words = parts[:cond], parts[cond:]
        if not pat_words:
            raise RuleError(f"{where}: empty pattern in {text!r}")
        pattern = tuple(_parse_token(p, classes, where) for p in pat_words)
        if all(t.optional for t in pattern):
            raise RuleError(f"{where}: every token of {text!r} is optional, so it matches nothing")
        unless: list[str] = []
        only: list[str] = []
        target = None
        for p in cond_words:
            if p in _CONDITIONS:
                target = unless if p == "unless-actor" else only
                continue
            m = _CLASS_REF.match(p)
            if not m or m.group(1) not in classes:
                raise RuleError(f"{where}: actor conditions take defined @classes, got {p!r} in {text!r}")
            target.append(m.group(1))  # type: ignore[union-attr]
        if cond_words and not (unless or only):
            raise RuleError(f"{where}: {cond_words[0]} needs at least one @class in {text!r}")
        if exception and (unless or only):
            raise RuleError(f"{where}: an exception (!...) takes no actor condition: {text!r}")
        rules.append(Rule(text, where, pattern, exception, tuple(unless), tuple(only)))
    return rules, classes, actors


class RuleSet:
    """Compiled rules: `find(caption)` -> the first keyword occurrence that counts, or None."""

    def __init__(
        self,
        lines: Iterable[str],
        *,
        source: str = "<rules>",
        base_classes: Mapping[str, frozenset[str]] | None = None,
        base_actors: tuple[str, ...] = (),
    ):
        numbered = [(f"{source}:{n}", line) for n, line in enumerate(lines, start=1)]
        rules, self.classes, actors = parse_lines(numbered, base_classes)
        self.keywords = [r for r in rules if not r.exception]
        self.exceptions = [r for r in rules if r.exception]
        named = [c for r in self.keywords for c in (*r.unless, *r.only)]
        if actors is None:  # without an `actors` line: the base file's actors and every class a condition names
            actors = tuple(dict.fromkeys(c for c in (*base_actors, *named) if c in self.classes))
        self.actor_classes = actors
        self._index_kw = self._index(self.keywords)
        self._index_ex = self._index(self.exceptions)

    # ------------------------------------------------------------------ matching helpers
    def in_class(self, word: str, cls: str) -> bool:
        words = self.classes[cls]
        return any(b in words for b in _bases(word))

    def actor_of(self, word: str) -> tuple[str, ...]:
        return tuple(c for c in self.actor_classes if self.in_class(word, c))

    def _first_words(self, pattern: tuple[Token, ...]) -> set[str] | None:
        """Words a match can start with (None: any word)."""
        out: set[str] = set()
        for tok in pattern:
            if tok.any_word:
                return None
            out |= tok.words if not tok.cls else self.classes[tok.cls]
            if not tok.optional:
                return out
        return out

    def _index(self, rules: list[Rule]) -> tuple[dict[str, list[int]], list[int]]:
        by_word: dict[str, list[int]] = {}
        anywhere: list[int] = []
        for i, r in enumerate(rules):
            first = self._first_words(r.pattern)
            if first is None:
                anywhere.append(i)
            for w in first or ():
                by_word.setdefault(w, []).append(i)
        return by_word, anywhere

    def _candidates(self, index, word: str) -> list[int]:
        by_word, anywhere = index
        found = set(anywhere)
        for b in _bases(word):
            found.update(by_word.get(b, ()))
        return sorted(found)

    def _tok_ok(self, tok: Token, word: str) -> bool:
        if tok.any_word:
            return True
        if tok.cls:
            return self.in_class(word, tok.cls)
        return word in tok.words

    def _ends(self, pattern: tuple[Token, ...], words: list[str], i: int, k: int = 0) -> set[int]:
        """Every j such that pattern[k:] matches words[i:j]."""
        if k == len(pattern):
            return {i}
        tok = pattern[k]
        out = self._ends(pattern, words, i, k + 1) if tok.optional else set()
        if i < len(words) and self._tok_ok(tok, words[i]):
            out |= self._ends(pattern, words, i + 1, k + 1)
        return out

    def _matches(self, index, rules: list[Rule], words: list[str]):
        for i, w in enumerate(words):
            for r in self._candidates(index, w):
                ends = [j for j in self._ends(rules[r].pattern, words, i) if j > i]
                if ends:
                    yield i, max(ends), rules[r]

    def _is_prep_object(self, words: list[str], k: int) -> bool:
        for m in range(k - 1, max(-1, k - 4), -1):
            if words[m] in PREPOSITIONS:
                return True
            if self.actor_of(words[m]):
                return False
        return False

    def _plain(self, word: str) -> bool:
        """A word that is no actor, auxiliary, adverb, preposition, conjunction or determiner."""
        return not (
            word in AUXILIARIES or word in PREPOSITIONS or word in CONJUNCTIONS or word in DETERMINERS
            or _is_adverb(word) or self.actor_of(word)
        )  # fmt: skip

    def _noun_use(self, words: list[str], i: int, j: int) -> bool:
        ing = _is_ing(words[j - 1])
        skipped, det = 0, False
        for k in range(i - 1, max(-1, i - 5), -1):
            w = words[k]
            if w in CONJUNCTIONS:
                return skipped > 0
            if w == "to":
                return det
            if w in PREPOSITIONS:
                return ing and skipped == 0
            if w in DETERMINERS:
                det = True
            elif not self._plain(w):
                return False
            skipped += 1
            if skipped > 3:
                return False
        return False

    def find_actor(self, words: list[str], i: int, j: int) -> tuple[str, tuple[str, ...]]:
        """The actor of the keyword words[i:j] (see the module docstring), or ("", ())."""
        n = len(words)
        if j < n and words[j] == "of":
            for k in range(j + 1, min(n, j + 5)):
                cls = self.actor_of(words[k])
                if cls:
                    return words[k], cls
        if _is_ing(words[j - 1]) and j < n:
            cls = self.actor_of(words[j])
            if cls:
                return words[j], cls
        if self._noun_use(words, i, j):
            return "", ()
        for k in range(i - 1, -1, -1):
            cls = self.actor_of(words[k])
            if not cls:
                continue
            adjacent = _is_ing(words[j - 1]) and all(w in AUXILIARIES or _is_adverb(w) for w in words[k + 1 : i])
            if adjacent or not self._is_prep_object(words, k):
                return words[k], cls
        return "", ()

    # ------------------------------------------------------------------ public
    def find(self, caption: str) -> Hit | None:
        words = tokenize(caption)
        if not words or not self.keywords:
            return None
        excepted: set[int] = set()
        for i, j, _ in self._matches(self._index_ex, self.exceptions, words):
            excepted.update(range(i, j))
        for i, j, rule in sorted(self._matches(self._index_kw, self.keywords, words), key=lambda m: (m[0], -m[1])):
            if excepted.intersection(range(i, j)):
                continue
            if rule.unless or rule.only:
                actor, cls = self.find_actor(words, i, j)
                if rule.unless and set(cls) & set(rule.unless):
                    continue
                if rule.only and not set(cls) & set(rule.only):
                    continue
                return Hit(" ".join(words[i:j]), rule.text, actor, cls)
            return Hit(" ".join(words[i:j]), rule.text)
        return None


# ---------------------------------------------------------------------- files
def default_rules_text() -> str:
    return resources.files("genau_core.recap").joinpath("data", DEFAULT_RULES_FILE).read_text(encoding="utf-8")


def default_rule_lines() -> tuple[str, ...]:
    """The default rule file's rules (comments and blank lines removed), in order."""
    return _clean_lines(default_rules_text().splitlines())


def _clean_lines(lines: Iterable[str]) -> tuple[str, ...]:
    out = []
    for line in lines:
        line = " ".join(line.split())
        if line and not line.startswith("#"):
            out.append(line)
    return tuple(out)


def default_classes() -> Mapping[str, frozenset[str]]:
    return _default_parse()[0]


@lru_cache(maxsize=1)
def _default_parse() -> tuple[Mapping[str, frozenset[str]], tuple[str, ...]]:
    """The default file's classes and its `actors` classes."""
    _, classes, actors = parse_lines(
        [(f"{DEFAULT_RULES_FILE}:{n}", line) for n, line in enumerate(default_rules_text().splitlines(), 1)]
    )
    return classes, actors or ()


def read_rule_file(path: str | Path) -> tuple[str, ...]:
    """A rule file's rules (comments and blank lines removed); compiled once here so that a bad
    line stops the run with the file, line and reason before any work is done."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise RuleError(f"{path}: keyword/rule file not found") from None
    except UnicodeDecodeError as e:
        raise RuleError(f"{path}: not UTF-8 text (byte {e.start}); save the rule file as UTF-8") from None
    except OSError as e:
        raise RuleError(f"{path}: cannot read ({e.strerror})") from None
    lines = text.splitlines()
    parse_lines([(f"{path}:{n}", line) for n, line in enumerate(lines, 1)], default_classes())
    return _clean_lines(lines)


@lru_cache(maxsize=8)
def compile_rules(lines: tuple[str, ...]) -> RuleSet:
    """A RuleSet over `lines` (classes it does not define, and without an `actors` line its
    actor classes, come from the default file)."""
    classes, actors = _default_parse()
    return RuleSet(lines, source="rules", base_classes=classes, base_actors=actors)
