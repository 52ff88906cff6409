"""Test strings for tokenizer comparisons: deterministic (a seeded
random.Random, no dependence on the Python version's hash seed), covering what
tokenizers get wrong: Unicode scripts, combining marks, emoji (with ZWJ
sequences, skin tones, flags), runs of spaces, tabs and newlines, digits,
contractions, punctuation, code, and the text of special tokens.

  strings(count, special_tokens, seed) -> list of `count` distinct strings
"""

import random

# Words of many scripts: Latin (with diacritics), Greek, Cyrillic, Armenian,
# Hebrew, Arabic, Devanagari, Bengali, Tamil, Thai, Georgian, Hangul,
# Japanese kana and kanji, Chinese, Ethiopic, Khmer, Tibetan, Mongolian.
WORDS = [
    "Hello", "world", "the", "The", "quick", "brown", "fox", "naïve", "café", "Straße",
    "Ångström", "façade", "jalapeño", "œuvre", "İstanbul", "ǅemal", "ﬁnance",
    "Καλημέρα", "κόσμε", "Ελλάδα", "Привет", "мир", "Ёлка", "Բարեւ", "שלום", "עולם",
    "مرحبا", "بالعالم", "سلام", "नमस्ते", "दुनिया", "হ্যালো", "வணக்கம்", "สวัสดี",
    "ชาวโลก", "გამარჯობა", "안녕하세요", "세계", "こんにちは", "カタカナ", "ﾊﾝｶｸ", "日本語",
    "你好", "世界", "中文字符", "ሰላም", "សួស្តី", "བཀྲ་ཤིས", "ᠮᠣᠩᠭᠣᠯ", "Ώ",
    "e\u0301", "a\u0308\u0304", "\u1100\u1161\u11a8", "Z\u0351\u036b\u0343",
    "ℌ𝔢𝔩𝔩𝔬", "𝟙𝟚𝟛", "Ⅻ", "½", "²", "㎏", "ｆｕｌｌｗｉｄｔｈ",
]
EMOJI = [
    "😀", "🎉", "👍🏽", "👨\u200d👩\u200d👧\u200d👦", "🏳️\u200d🌈", "🇫🇷", "🇯🇵", "❤️", "🤖",
    "🧑🏿\u200d🚀", "✈️", "🫠", "☕", "🙂🙃", "\u2764\ufe0f\u200d\U0001f525",
]
PUNCT = [
    ".", ",", "!", "?", "...", "…", ";", ":", "-", "—", "–", "'", '"', "“", "”", "«", "»",
    "(", ")", "[", "]", "{", "}", "<", ">", "/", "\\", "|", "@", "#", "$", "%", "^", "&",
    "*", "_", "=", "+", "~", "`", "¿", "¡", "。", "、", "！", "？", "·", "•", "§", "©",
]
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ll", "’s"]
CODE = [
    "def f(x):\n    return x ** 2\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}",
    "SELECT * FROM t WHERE id = 42;",
    "<div class=\"x\">&amp;</div>",
    "https://example.com/path?q=1&r=2#frag",
    "user@example.org",
    "#include <stdio.h>\r\nint main(void) { return 0; }\r\n",
    "if x != None:\n\t\tpass  # trailing  \n",
    "$ ls -la | grep '^d' > out.txt 2>&1",
    "{\"key\": [1, 2.5, -3e10, true, null]}",
]
WHITESPACE = [
    " ", "  ", "   ", "    ", "        ", "\t", "\t\t", " \t ", "\n", "\n\n", "\n\n\n",
    "\r\n", "\r", " \n ", "\n \n", "\t\n", "\u00a0", "\u3000", "\u2009", "\u200b",
    "\v", "\f", "\u2028", "\u0085",
]


def _number(rng):
    kind = rng.randrange(6)
    if kind == 0:
        return str(rng.randrange(10))
    if kind == 1:
        return "".join(rng.choice("0123456789") for _ in range(rng.randrange(2, 16)))
    if kind == 2:
        return f"{rng.randrange(1, 10**6):,}"
    if kind == 3:
        return f"{rng.uniform(-1000, 1000):.{rng.randrange(1, 6)}f}"
    if kind == 4:
        return f"{rng.randrange(1900, 2100)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
    return "٠١٢٣٤٥٦٧٨٩"[: rng.randrange(1, 10)] if rng.random() < 0.5 else "१२३४"


def _fragment(rng, special_tokens):
    kind = rng.randrange(10)
    if kind <= 2:
        return rng.choice(WORDS)
    if kind == 3:
        return rng.choice(EMOJI)
    if kind == 4:
        return rng.choice(PUNCT)
    if kind == 5:
        return rng.choice(WHITESPACE)
    if kind == 6:
        return _number(rng)
    if kind == 7:
        return rng.choice(CONTRACTIONS)
    if kind == 8 and special_tokens:
        token = rng.choice(special_tokens)
        # Now and then a broken spelling, which must stay ordinary text.
        if rng.random() < 0.25 and len(token) > 2:
            cut = rng.randrange(1, len(token) - 1)
            token = token[:cut] if rng.random() < 0.5 else token[cut:]
        return token
    # A random code point from a random block (no surrogates, no NUL, no
    # noncharacters).
    while True:
        lo, hi = rng.choice([(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x52F), (0x590, 0x6FF),
                             (0x900, 0xDFF), (0xE00, 0xEFF), (0x1100, 0x11FF),
                             (0x2000, 0x2BFF), (0x3000, 0x30FF), (0x4E00, 0x9FFF),
                             (0xAC00, 0xD7A3), (0xF900, 0xFFEF), (0x1F300, 0x1FAFF),
                             (0x1, 0x1F), (0x10000, 0x1FFFF), (0x20000, 0x2A6DF)])
        cp = rng.randint(lo, hi)
        if (cp & 0xFFFE) != 0xFFFE and not 0xFDD0 <= cp <= 0xFDEF:
            return chr(cp)


def strings(count, special_tokens, seed=20261129):
    """`count` distinct strings: fixed cases first, then random mixtures of
    fragments joined by nothing or by whitespace."""
    rng = random.Random(seed)
    fixed = (
        ["", " ", "a", "Hello world", " Hello world", "Hello  world", "hello\nworld",
         "   leading and trailing   ", "\n\nnewlines first", "tabs\tinside\t\ttext",
         "I'm sure you've seen they'd've done it", "DON'T SHOUT", "3.14159", "1234567890",
         "12 345 6789 00000", "a1b22c333d4444"]
        + WORDS + EMOJI + CODE + WHITESPACE
        + [w * n for w in WHITESPACE[:12] for n in (2, 5, 17)]
        + [t for t in special_tokens] + [f"x{t}y" for t in special_tokens]
        + [f" {t} " for t in special_tokens] + [t + t for t in special_tokens]
    )
    out, seen = [], set()
    for s in fixed:
        if s not in seen:
            seen.add(s)
            out.append(s)
    while len(out) < count:
        parts = [_fragment(rng, special_tokens) for _ in range(rng.randrange(1, 12))]
        glue = rng.choice(["", "", " ", " ", "\n", "\t", "  "])
        s = glue.join(parts)
        if rng.random() < 0.1:
            s = rng.choice(WHITESPACE) + s
        if rng.random() < 0.1:
            s = s + rng.choice(WHITESPACE)
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out[:count]
