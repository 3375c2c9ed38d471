"""Verifiable-instruction checks (IFEval style): counts, words, case, language of the answer text."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from . import AttemptView, Outcome, Regex
from .answer import AnswerCheck, Range, words


def sentences(text: str) -> list[str]:
    text = re.sub(r"^\s*(?:[-*•+]|\d+[.)])\s+", "", text, flags=re.M)
    parts = re.split(r"(?<=[.!?])[\"')\]]*\s+|\n\s*\n", text.strip())
    return [p for p in parts if re.search(r"\w", p)]

_BULLET = re.compile(r"^[ \t]*[-*•+][ \t]+\S", re.M)
_NUMBERED = re.compile(r"^[ \t]*\d+[.)][ \t]+\S", re.M)


class WordCount(AnswerCheck, Range):
    """The answer's word count is within bounds."""

    type: Literal["word_count"] = "word_count"

    def run(self, view: AttemptView) -> Outcome:
        return self.out_of_range(len(words(self.answer(view))), "words")


class SentenceCount(AnswerCheck, Range):
    """The answer's sentence count is within bounds (list markers dropped, blank lines end a sentence)."""

    type: Literal["sentence_count"] = "sentence_count"

    def run(self, view: AttemptView) -> Outcome:
        return self.out_of_range(len(sentences(self.answer(view))), "sentences")


class ParagraphCount(AnswerCheck, Range):
    """The answer's paragraph count (blocks between blank lines) is within bounds."""

    type: Literal["paragraph_count"] = "paragraph_count"

    def run(self, view: AttemptView) -> Outcome:
        paras = [p for p in re.split(r"\n\s*\n", self.answer(view).strip()) if p.strip()]
        return self.out_of_range(len(paras), "paragraphs")


class BulletCount(AnswerCheck, Range):
    """The answer's bullet-point count (`-`, `*`, `•`, `+`) is within bounds."""

    type: Literal["bullet_count"] = "bullet_count"

    def run(self, view: AttemptView) -> Outcome:
        return self.out_of_range(len(_BULLET.findall(self.answer(view))), "bullet points")


class NumberedCount(AnswerCheck, Range):
    """The answer's numbered-item count (`1.` or `1)`) is within bounds."""

    type: Literal["numbered_count"] = "numbered_count"

    def run(self, view: AttemptView) -> Outcome:
        return self.out_of_range(len(_NUMBERED.findall(self.answer(view))), "numbered items")


class SectionCount(AnswerCheck, Range):
    """The number of sections (lines matching `marker`) is within bounds."""

    type: Literal["section_count"] = "section_count"
    marker: Regex = r"^[ \t]*#{1,6}[ \t]+\S"
    """Regular expression a section's first line matches (default: a Markdown heading)."""
    ignore_case: bool = False
    """Match `marker` ignoring case."""

    def run(self, view: AttemptView) -> Outcome:
        n = len(re.findall(self.marker, self.answer(view), re.M | (re.I if self.ignore_case else 0)))
        return self.out_of_range(n, "sections")


class LineCount(AnswerCheck, Range):
    """The number of non-empty lines is within bounds."""

    type: Literal["line_count"] = "line_count"

    def run(self, view: AttemptView) -> Outcome:
        lines = [ln for ln in self.answer(view).strip().splitlines() if ln.strip()]
        return self.out_of_range(len(lines), "non-empty lines")


class CharCount(AnswerCheck, Range):
    """The answer's length in characters (surrounding whitespace dropped) is within bounds."""

    type: Literal["char_count"] = "char_count"

    def run(self, view: AttemptView) -> Outcome:
        return self.out_of_range(len(self.answer(view).strip()), "characters")


def _word_re(w: str) -> re.Pattern:
    return re.compile(r"(?<![\w])" + re.escape(w) + r"(?![\w])", re.I)


class ForbiddenWords(AnswerCheck):
    """None of `words` appears in the answer (whole words, any case)."""

    type: Literal["forbidden_words"] = "forbidden_words"
    words: list[str] = Field(min_length=1)
    """The forbidden words or phrases."""

    def run(self, view: AttemptView) -> Outcome:
        text = self.answer(view)
        bad = [w for w in self.words if _word_re(w).search(text)]
        return f"uses forbidden word(s): {', '.join(bad)}" if bad else None


class RequiredWords(AnswerCheck):
    """Every one of `words` appears in the answer (whole words, any case)."""

    type: Literal["required_words"] = "required_words"
    words: list[str] = Field(min_length=1)
    """The required words or phrases."""

    def run(self, view: AttemptView) -> Outcome:
        text = self.answer(view)
        missing = [w for w in self.words if not _word_re(w).search(text)]
        return f"missing required word(s): {', '.join(missing)}" if missing else None


class KeywordCount(AnswerCheck, Range):
    """The number of uses of `word` (whole word, any case) is within bounds."""

    type: Literal["keyword_count"] = "keyword_count"
    word: str
    """The word or phrase counted."""

    def run(self, view: AttemptView) -> Outcome:
        n = len(_word_re(self.word).findall(self.answer(view)))
        return self.out_of_range(n, f"uses of {self.word!r}")


class ForbiddenChars(AnswerCheck):
    """None of `chars` appears in the answer."""

    type: Literal["forbidden_chars"] = "forbidden_chars"
    chars: str = Field(min_length=1)
    """The forbidden characters, as one string."""

    def run(self, view: AttemptView) -> Outcome:
        text = self.answer(view)
        bad = sorted({c for c in self.chars if c in text})
        return f"contains forbidden character(s) {''.join(bad)!r}" if bad else None


class LetterCase(AnswerCheck):
    """The answer's letters are all upper-case, all lower-case, or in title case."""

    type: Literal["letter_case"] = "letter_case"
    mode: Literal["upper", "lower", "title"]
    """`title`: every word starts upper-case (short function words after the first may be lower)."""

    def run(self, view: AttemptView) -> Outcome:
        text = self.answer(view).strip()
        letters = [c for c in text if c.isalpha()]
        if not letters:
            return "answer has no letters"
        if self.mode == "upper" and any(c.islower() for c in letters):
            return "answer is not all upper-case"
        if self.mode == "lower" and any(c.isupper() for c in letters):
            return "answer is not all lower-case"
        if self.mode == "title":
            small = {"a", "an", "the", "and", "or", "of", "in", "on", "to", "for", "at", "by", "with"}
            ws = [w for w in words(text) if w[0].isalpha()]
            bad = [w for i, w in enumerate(ws) if not w[0].isupper() and not (i and w in small)]
            if bad:
                return f"not title case: {', '.join(bad[:5])}"
        return None


class StartsWith(AnswerCheck):
    """The answer starts with `text` (case- and space-insensitive)."""

    type: Literal["starts_with"] = "starts_with"
    text: str
    """The expected opening."""

    def run(self, view: AttemptView) -> Outcome:
        got, want = " ".join(self.answer(view).split()).lower(), " ".join(self.text.split()).lower()
        return None if got.startswith(want) else f"answer does not start with {self.text!r}"


class EndsWith(AnswerCheck):
    """The answer ends with `text` (case- and space-insensitive)."""

    type: Literal["ends_with"] = "ends_with"
    text: str
    """The expected ending."""

    def run(self, view: AttemptView) -> Outcome:
        got, want = " ".join(self.answer(view).split()).lower(), " ".join(self.text.split()).lower()
        return None if got.endswith(want) else f"answer does not end with {self.text!r}"


_STOPWORDS: dict[str, set[str]] = {
    "en": set("the and is are was were of to in that it for with as on be this have not but by from they you at or which".split()),
    "fr": set("le la les et est sont de des du un une que qui dans pour pas sur avec ce il elle nous vous au aux par".split()),
    "es": set("el la los las y es son de del un una que en para con por no se su al lo como pero más muy".split()),
    "de": set("der die das und ist sind ein eine nicht mit zu den von auf für sich dem des im auch es wir sie".split()),
    "it": set("il lo la gli le e è sono di del della un una che non per con su nel sono anche come più".split()),
    "pt": set("o a os as e é são de do da um uma que não para com em no na por se mais como".split()),
    "nl": set("de het een en is zijn van dat niet met voor op te in ook maar er ze wij".split()),
}


def detect_language(text: str) -> tuple[str | None, dict[str, int]]:
    """Stop-word vote over en/fr/es/de/it/pt/nl: (language or None when too short to tell, votes)."""
    toks = [w.lower() for w in words(text)]
    votes = {lang: sum(1 for t in toks if t in sw) for lang, sw in _STOPWORDS.items()}
    best = max(votes, key=lambda k: votes[k])
    ranked = sorted(votes.values(), reverse=True)
    if ranked[0] < 3 or ranked[0] < 1.5 * ranked[1]:
        return None, votes
    return best, votes


class Language(AnswerCheck):
    """The answer is written in `lang` (a stop-word vote)."""

    type: Literal["language"] = "language"
    lang: Literal["en", "fr", "es", "de", "it", "pt", "nl"]
    """ISO 639-1 code of the expected language."""

    def run(self, view: AttemptView) -> Outcome:
        lang, votes = detect_language(self.answer(view))
        if lang != self.lang:
            return f"answer language is {lang or 'unclear'}, expected {self.lang} (stop-word votes {votes})"
        return None
