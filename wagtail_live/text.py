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
    """Whether ``character`` is a combining mark that sits on the one before (Mn, Mc, Me)."""
    return unicodedata.category(character)[0] == "M"


# -- characters refused outright ------------------------------------------------

#: C0/C1 controls kept in message text: line breaks and tabs are ordinary typing.
TEXT_CONTROLS = frozenset("\n\t")


def forbidden_character(text, allowed_controls=frozenset()):
    """The first character of ``text`` no chat field may hold, or None.

    Lone surrogates (U+D800-U+DFFF: JSON can spell them, UTF-8 and the database
    cannot) and C0/C1 control characters (category Cc: NUL, which PostgreSQL
    refuses, escape sequences, DEL ...) except those in ``allowed_controls``.
    """
    for character in text:
        category = unicodedata.category(character)
        if category == "Cs" or (category == "Cc" and character not in allowed_controls):
            return character
    return None


# Explicit bidi formatting (UAX #9 section 2): embeddings and overrides end at PDF, isolates at
# PDI, and a paragraph end closes everything.
_OPENERS = {"\u202a": "embed", "\u202b": "embed", "\u202d": "override", "\u202e": "override"}
_OPENERS.update({"\u2066": "isolate", "\u2067": "isolate", "\u2068": "isolate"})
_CLOSERS = {"\u202c": ("embed", "override"), "\u2069": ("isolate",)}
BIDI_CONTROLS = frozenset(_OPENERS) | frozenset(_CLOSERS)


def bidi_problem(text):
    """Why ``text``'s explicit bidi controls could reorder what shows, or None.

    ``"override"``: LRO or RLO (U+202D, U+202E) is present. They display letters in
    the reverse of their stored order ("\u202emaps" shows "spam") and ordinary
    writing in any script never needs them; so they are refused even when closed.
    ``"unbalanced"``: an embedding or isolate (U+202A, U+202B, U+2066-U+2068) left
    open at the end of a line, or a PDF/PDI (U+202C, U+2069) closing nothing or the
    wrong kind. Open controls would reorder what follows them (the name beside a
    message, the next message); closed ones keep each letter run in its order, so
    right-to-left writers may use them.
    """
    for line in text.split("\n"):
        stack = []
        for character in line:
            kind = _OPENERS.get(character)
            if kind == "override":
                return "override"
            if kind:
                stack.append(kind)
            elif character in _CLOSERS:
                if not stack or stack[-1] not in _CLOSERS[character]:
                    return "unbalanced"
                stack.pop()
        if stack:
            return "unbalanced"
    return None


# -- invisible characters ---------------------------------------------------------

# Default_Ignorable_Code_Point (Unicode DerivedCoreProperties.txt) is, by its derivation,
# the format characters (Cf) plus Other_Default_Ignorable_Code_Point plus the variation
# selectors, less the prepended concatenation marks and the few visible format characters
# below. Python's unicodedata has no such property, so it is rebuilt from Cf and these
# ranges of PropList.txt (Unicode 15.1), which are not Cf: the combining grapheme joiner,
# Hangul fillers, Khmer inherent vowels, Mongolian free variation selectors, the variation
# selectors, U+2065 and U+FFF0-FFF8 (reserved), and the tag plane's unassigned rest.
_IGNORABLE_NOT_CF = (
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x2065, 0x2065),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0xE0000, 0xE0FFF),
)
# Cf characters that are not default-ignorable: they show (Arabic number signs and other
# prepended concatenation marks, interlinear annotation marks, Egyptian hieroglyph controls).
_SHOWN_FORMAT = (
    (0x0600, 0x0605),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1345F),
)


def _in(ranges, code):
    return any(low <= code <= high for low, high in ranges)


def is_default_ignorable(character):
    """Whether ``character`` is a Default_Ignorable_Code_Point: shown as nothing at all."""
    code = ord(character)
    if _in(_IGNORABLE_NOT_CF, code):
        return True
    return unicodedata.category(character) == "Cf" and not _in(_SHOWN_FORMAT, code)


def without_ignorables(text):
    """``text`` without its default-ignorable characters (zero-width, fillers, selectors ...)."""
    return "".join(character for character in text if not is_default_ignorable(character))


def has_visible_character(text):
    """Whether ``text`` shows anything: not only spaces, format or blank-looking characters.

    Zero-width spaces and joiners, word joiners, bidi marks, the byte-order mark, Hangul
    fillers (U+3164, U+FFA0) and the blank Braille pattern (U+2800) render as nothing; so
    does a combining mark with no character to sit on.
    """
    for character in without_ignorables(disarm.strip_format(text)):
        if character.isspace() or is_mark(character):
            continue
        if unicodedata.category(character)[0] in "CZ":
            continue
        return True
    return False


def most_marks_on_one_character(text):
    """The longest run of combining marks on one character of ``text`` (after NFC).

    Invisible characters between marks (a zero-width joiner, a Hangul filler: any
    ``is_default_ignorable`` one) do not end a run: the marks still stack on the same
    letter.
    """
    longest = run = 0
    for character in unicodedata.normalize("NFC", text):
        if is_mark(character):
            run += 1
            longest = max(longest, run)
        elif not is_default_ignorable(character):
            run = 0
    return longest


#: Longest display name shown (characters, after trimming): an account's first and last name
#: may hold 300, and a name that long crowds out the message it labels.
MAX_NAME_LENGTH = 64


def trimmed_marks(text, limit=MAX_MARKS_PER_CHARACTER):
    """``text`` (NFC) with each character's combining marks cut to the first ``limit``.

    Counted as ``most_marks_on_one_character`` counts (invisible characters between marks
    do not end a run), so the result always passes that check.
    """
    kept = []
    run = 0
    for character in unicodedata.normalize("NFC", text):
        if is_mark(character):
            run += 1
            if run > limit:
                continue
        elif not is_default_ignorable(character):
            run = 0
        kept.append(character)
    return "".join(kept)


def display_name(name, max_length=MAX_NAME_LENGTH):
    """A person's name as chat, the player and the studio show it (``str`` in, ``str`` out).

    Every name made from an account (first and last name, else the username) goes through
    here (docs/chat-and-moderation.md, "Names"): runs of white space become one space, a
    letter keeps at most ``MAX_MARKS_PER_CHARACTER`` combining marks (the rest are dropped,
    not refused: the account's owner cannot fix the name from the chat), and the name is
    cut to ``max_length`` characters. Markup and bidi controls stay: names are always shown
    as text inside their own ``<bdi>``.
    """
    name = " ".join(trimmed_marks(str(name)).split())
    return name[:max_length].rstrip()


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


# A term starts and ends where no letter or digit touches it: "_spam_" holds "spam".
_BEFORE = r"(?<![^\W_])"
_AFTER = r"(?![^\W_])"
# A space in a phrase matches any run of separators: "free crypto" catches "free-crypto".
_SEPARATORS = r"[\W_]+"


def term_pattern(term):
    """``term`` as a whole-word (or phrase) ``TermPattern``, or None when nothing of it shows.

    None for a term of only invisible characters: it would otherwise match every message.
    """
    term = folded(without_ignorables(term))
    key = _skeleton(term).strip()
    if not key:
        return None
    body = _DECORATION.join(
        _SEPARATORS if character == " " else re.escape(character) for character in key
    )
    return TermPattern(scripts_of(term), re.compile(rf"{_BEFORE}{body}{_DECORATION}{_AFTER}"))


#: Scripts whose letters were drawn after Latin capitals, so that any word in them may be
#: read as a Latin one (Cherokee "ᏚᏢᎪᎷ", its lower case "ꮪꮲꭺꮇ", Lisu "ꓢꓑꓮꓟ"): always mapped.
LATIN_SHAPED_SCRIPTS = frozenset({disarm.Script.CHEROKEE, disarm.Script.LISU})

#: Letters of Cyrillic and Greek that are mainly Latin look-alikes (in TS #39 confusables, and
#: rare or regional in the languages themselves): a word holding one is mapped. Dze Ѕ ѕ,
#: Byelorussian-Ukrainian I І і, Je Ј ј, palochka Ӏ ӏ, Qa Ԛ ԛ, We Ԝ ԝ; Greek lunate sigma Ϲ ϲ,
#: yot Ϳ ϳ.
LATIN_LOOKALIKE_LETTERS = frozenset("ЅѕІіЈјӀӏԚԛԜԝϹϲͿϳ")


def reads_as_own_script(word, term_scripts):
    """Whether ``word`` (NFKC, not case-folded) is kept as a word of its own script.

    Only a word written wholly in one script other than ``term_scripts``, so "сор" in
    a Russian sentence stays Russian for a blocked "cop" — unless it cannot be an
    ordinary word of that script: a Latin-shaped script (``LATIN_SHAPED_SCRIPTS``), a
    letter that is mainly a Latin look-alike (``LATIN_LOOKALIKE_LETTERS``), or all
    capitals of two letters or more ("ЅРАМ", "ΗΟΡΕ", "СОР" shout in look-alikes that
    cannot be told from Latin capitals). A capital first letter is a sentence's start:
    "Сор" stays Russian. Mixed-script words are the classic disguise: always mapped.
    """
    word_scripts = scripts_of(word)
    if len(word_scripts) != 1 or word_scripts <= term_scripts:
        return False
    if word_scripts & LATIN_SHAPED_SCRIPTS:
        return False
    if any(character in LATIN_LOOKALIKE_LETTERS for character in word):
        return False
    letters = [character for character in word if character.isalpha()]
    shouted = len(letters) > 1 and all(character.isupper() for character in letters)
    return not shouted


def visible_words(text):
    """``text`` without invisible characters, split at white space (no-break spaces too).

    Default-ignorable characters (``is_default_ignorable``) and format characters are
    removed first, so they never split a word or hide inside one. Not yet NFKC: that
    would turn look-alike letters (lunate ϲ) into ordinary ones (ς) before
    ``reads_as_own_script`` sees them.
    """
    return disarm.strip_format(without_ignorables(text)).split()


def match_keys(text, scripts):
    """``text`` in the forms terms written in ``scripts`` are looked for in (a tuple).

    Every word goes through ``folded`` and the TS #39 skeleton, except the words
    ``reads_as_own_script`` keeps (case-folded only). A second form maps each mapped
    word's look-alikes first (disarm's ``normalize_confusables``, which keeps case and
    does no NFKC), then folds: capitals and compatibility letters keep their own
    look-alike ("ΗΟΡΕ" is "hope", not the "nope" of "ηορε"; lunate "ϹΟΡ" is "cop",
    not the "sop" of its NFKC "ΣΟΡ"). Invisible characters never split a word.
    """
    folded_first, skeleton_first = [], []
    for word in visible_words(text):
        if reads_as_own_script(word, scripts):
            kept = unicodedata.normalize("NFD", folded(word))
            folded_first.append(kept)
            skeleton_first.append(kept)
        else:
            folded_first.append(_skeleton(folded(word)))
            skeleton_first.append(_skeleton(folded(disarm.normalize_confusables(word))))
    keys = (" ".join(folded_first), " ".join(skeleton_first))
    return keys if keys[0] != keys[1] else keys[:1]


def match_key(text, scripts):
    """The first of ``match_keys``: every word folded, then mapped to its skeleton."""
    return match_keys(text, scripts)[0]


# Apostrophes elide inside ordinary words ("l'été", "don't"): joining them would make new
# words of ordinary text, so they split words like a space (spelled-out letters still join).
_ELISIONS = frozenset("'\u2019\u02bc")


def _is_word_character(character):
    return character.isalnum() or is_mark(character)


def _chunks(key):
    # [(is_word, text), ...]: runs of letters/digits (with their marks) and of separators.
    chunks = []
    for character in key:
        kind = _is_word_character(character)
        if chunks and chunks[-1][0] == kind:
            chunks[-1][1].append(character)
        else:
            chunks.append((kind, [character]))
    return [(kind, "".join(characters)) for kind, characters in chunks]


def _is_single_letter(chunk):
    return sum(1 for character in chunk if not is_mark(character)) == 1


def joined_key(key):
    """``key`` (a ``match_key``) with separators that split a word taken out.

    Two rules (docs/chat-and-moderation.md, "Blocked terms"): one punctuation
    character other than an apostrophe between letters joins them ("s.p.a.m", "free-crypto", "co-operate"
    become "spam", "freecrypto", "cooperate"); and letters spelled out one at a time
    are joined across up to three separators ("s p a m", "s - p - a - m"). Blocked
    terms are looked for in this form as well as in ``key``; whole words still, so a
    blocked "cop" does not hit "co-operate".
    """
    chunks = _chunks(key)
    joined = []
    for index, (is_word, chunk) in enumerate(chunks):
        between = 0 < index < len(chunks) - 1 and not is_word
        if between:
            before, after = chunks[index - 1][1], chunks[index + 1][1]
            one_punctuation = (
                len(chunk) == 1 and unicodedata.category(chunk)[0] == "P" and chunk not in _ELISIONS
            )
            spelled_out = (
                _is_single_letter(before)
                and _is_single_letter(after)
                and len(chunk) <= 3
                and "\n" not in chunk
            )
            if one_punctuation or spelled_out:
                continue
        joined.append(chunk)
    return "".join(joined)
