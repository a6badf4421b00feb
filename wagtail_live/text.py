"""Unicode rules for chat text: what is visible, how tall a letter may stack, how terms match.

Pure functions over ``str``, used by ``wagtail_live.chat``. The Unicode data
(default-ignorable and format characters, the confusables of Unicode TS #39)
comes from the ``disarm`` library, which tracks the Unicode releases; this
module holds only our policy (docs/chat-and-moderation.md, "Text rules").
"""

import re
import unicodedata

import disarm

#: Most combining marks (accents, diacritics) one character may carry. Real text needs few
#: (Vietnamese 2, pointed Hebrew or stacked Tibetan up to 4 or 5, after NFC composition);
#: "Zalgo" text piles dozens onto one letter to spill over the lines around it.
MAX_MARKS_PER_CHARACTER = 5

# Combining marks that decorate letters of any script (accents, overlays, "Zalgo"). A blocked
# term still matches when the message adds some of these: "frëëcrypto" is "freecrypto". Marks
# that are part of a script's spelling (kana voicing, Arabic vowels, Indic signs) are not here,
# so "ばか" and "はか" stay different words.
_DECORATION = "[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]*"


def is_mark(character):
    """Whether ``character`` is a combining mark that stacks on the one before (Mn, Me)."""
    return unicodedata.category(character) in ("Mn", "Me")


def has_visible_character(text):
    """Whether ``text`` shows anything: not only spaces, format or blank-looking characters.

    Zero-width spaces and joiners, word joiners, bidi marks, the byte-order mark, Hangul
    fillers (U+3164, U+FFA0) and the blank Braille pattern (U+2800) render as nothing; so
    does a combining mark with no character to sit on.
    """
    for character in disarm.strip_format(text):
        if character.isspace() or is_mark(character):
            continue
        if unicodedata.category(character)[0] in "CZ":
            continue
        return True
    return False


def most_marks_on_one_character(text):
    """The longest run of combining marks on one character of ``text`` (after NFC).

    Invisible format characters between marks (a zero-width joiner, say) do not end a
    run: the marks still stack on the same letter.
    """
    longest = run = 0
    for character in unicodedata.normalize("NFC", text):
        if is_mark(character):
            run += 1
            longest = max(longest, run)
        elif unicodedata.category(character) != "Cf":
            run = 0
    return longest


def folded(text):
    """``text`` in NFKC with case folding (Unicode's NFKC_Casefold order).

    Done before the TS #39 fold, so a capital is compared as its small letter: TS #39
    maps a capital "I" to "l", which would let "IDIOT" escape "idiot".
    """
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def scripts_of(text):
    """The Unicode scripts (UAX #24) of ``text``'s letters, without Common and Inherited."""
    return frozenset(disarm.detect_scripts(text))


def _skeleton(text):
    # disarm's skeleton_key: invisible and format characters removed (zero-width space and
    # joiner, soft hyphen, bidi controls ...), NFKC, look-alike letters mapped to their
    # Unicode TS #39 prototype, spaces collapsed; digits stay digits ("101" is not "lol").
    # Decomposed, so accents added on top can be skipped by the term patterns.
    return unicodedata.normalize("NFD", disarm.skeleton_key(text))


class TermPattern:
    """A blocked term ready to look for: its scripts and a regex over ``match_key`` text."""

    def __init__(self, scripts, regex):
        self.scripts = scripts
        self.regex = regex


def term_pattern(term):
    """``term`` as a whole-word (or phrase) ``TermPattern``, or None when nothing of it shows.

    None for a term of only invisible characters: it would otherwise match every message.
    """
    term = folded(term)
    key = _skeleton(term).strip()
    if not key:
        return None
    body = _DECORATION.join(re.escape(character) for character in key)
    return TermPattern(scripts_of(term), re.compile(rf"(?<!\w){body}{_DECORATION}(?!\w)"))


def match_key(text, scripts):
    """``text`` in the form terms written in ``scripts`` are looked for in.

    Every word goes through ``folded`` and the TS #39 skeleton — except a word written
    wholly in one other script: "сор" in a Russian sentence is a Russian word, not a
    disguised "cop". Words that mix scripts ("frееcrурtо" with Cyrillic е, у, р, о) are
    the disguises, and they are mapped. Invisible characters never split a word.
    """
    words = []
    for word in disarm.strip_format(folded(text)).split(" "):
        word_scripts = scripts_of(word)
        if len(word_scripts) == 1 and not word_scripts <= scripts:
            words.append(unicodedata.normalize("NFD", word))
        else:
            words.append(_skeleton(word))
    return " ".join(words)
