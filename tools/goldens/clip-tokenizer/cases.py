#!/usr/bin/env python3
"""Tokenizer cases, and the text that transformers' slow CLIPTokenizer hands to its BPE for each.

    /usr/bin/python3 cases.py > target/cases.json      (run.sh does this)

diffusers' pipelines use the slow CLIPTokenizer (tokenizer/vocab.json + merges.txt). Without ftfy installed
(neither transformers nor diffusers depends on it) it cleans text with BERT's BasicTokenizer
(strip_accents=False, do_split_on_punc=False) and joins the words with single spaces. This script applies
those rules with Python's own unicodedata and str methods, the primitives transformers uses:
  - drop U+0000, U+FFFD and every character of a category C* except tab, newline and carriage return;
  - space for tab, newline, carriage return and category Zs;
  - spaces around CJK ideographs (BERT's ranges);
  - NFC; split on whitespace (str.split); str.lower() each word; join with one space.
The fast tokenizer (tokenizers' CLIP pipeline: NFC, \\s+ -> " ", per-character lowercase) differs on CJK runs,
control and format characters and Greek final sigma; make_goldens.mjs records both.
"""
import json
import sys
import unicodedata

CJK = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
       (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]

CASES = [  # (group, text)
    ("basic", "a photo of a cat"),
    ("basic", "Hello, world!"),
    ("basic", "A PHOTO OF A CAT"),
    ("basic", ""),
    ("punctuation", "(masterpiece:1.2), best quality, ((ultra detailed)), [blurry]"),
    ("punctuation", "what?! no... yes!!! -- maybe; ok: fine."),
    ("punctuation", "rock & roll, 100% cotton, #hashtag @user, e-mail, snake_case, a/b\\c"),
    ("punctuation", "\"double\" 'single' `back` {braces} <angle> |pipe| ~tilde^ $5 +1 =2 *star*"),
    ("punctuation", "“smart quotes” ‘apostrophes’ em—dash en–dash ellipsis… bullet • ©®™ °C ±"),
    ("digits", "1234567890"),
    ("digits", "3.14159 1920x1080 4k 8K uhd v1.5 2023's best 1st 2nd 3rd"),
    ("digits", "①②③ ½ ¾ ² ٣ ४"),
    ("contractions", "don't can't won't I'm you're we've she'll he'd it's"),
    ("contractions", "DON'T I'M YOU'RE WE'VE SHE'LL HE'D IT'S"),
    ("contractions", "rock'n'roll o'clock cats' toys 'quoted' ''d don’t"),
    ("non-ascii", "café naïve Zürich façade Ångström São Paulo"),
    ("non-ascii", "cafe\u0301 An\u0303o"),  # decomposed accents: NFC composes them
    ("non-ascii", "straße ﬁne ＦＵＬＬ ｗｉｄｔｈ Å İstanbul"),
    ("non-ascii", "Москва, Россия; Київ"),
    ("non-ascii", "Ελληνικά ΟΔΟΣ λόγος"),  # capital sigma at word end: final sigma only in str.lower()
    ("non-ascii", "東京タワー 日本の桜 中文字符"),  # CJK ideographs: split one by one by the slow tokenizer
    ("non-ascii", "한국어 텍스트 ひらがな カタカナ"),
    ("non-ascii", "مرحبا بالعالم नमस्ते दुनिया"),
    ("non-ascii", "🐱 cat 🐶dog 🇫🇷 👍🏽 👩‍🚀"),  # the astronaut's zero-width joiner is a format character
    ("whitespace", "  a   red\t\tcircle \n\n on  a   blue   background  "),
    ("whitespace", "tabs\tand\r\nnewlines\u00a0no-break\u3000ideographic\u2003em"),
    ("whitespace", "   "),
    ("control", "zero\u200bwidth soft\u00adhyphen bom\ufeffmark bell\u0007 nul\u0000 del\u007f private\ue000use"),
    ("control", "line\u2028separator vt\u000bff\u000cnel\u0085"),
    ("special", "a cat<|endoftext|>a dog"),
    ("special", "<|startoftext|>hello<|endoftext|>"),
    # transformers' test_check_encoding_slow_fast asserts that slow and fast give the same tokens for these (in its
    # CI, where ftfy is installed: without ftfy the slow tokenizer drops the format characters U+200E and U+200F)
    ("slow=fast", "A\n'll 11p223RF☆ho!!to?'d'd''d of a cat to-$''d."),
    ("slow=fast", "xa\u0303y x\xe3y"),
    ("slow=fast", "\u0009"), ("slow=fast", "\u000B"), ("slow=fast", "\u000C"), ("slow=fast", "\u0020"),
    ("slow=fast", "\u200E"), ("slow=fast", "\u200F"), ("slow=fast", "\u000A"), ("slow=fast", "\r\n"),
    ("slow=fast", "\u000D"), ("slow=fast", "\u2028"), ("slow=fast", "\u2029"),
    ("long", "a highly detailed photograph of a majestic lion standing on a rocky cliff at sunset, golden hour "
             "lighting, dramatic clouds, cinematic composition, shallow depth of field, 85mm lens, award winning "
             "wildlife photography, national geographic, ultra realistic, 8k resolution, sharp focus, "
             "intricate fur texture, warm color palette, volumetric light rays, epic atmosphere, trending on "
             "artstation, by greg rutkowski and alphonse mucha, concept art, matte painting, octane render, unreal "
             "engine 5, highly intricate, elegant, smooth, sharp focus, illustration, hyperrealistic, "
             "photorealistic, masterpiece, best quality"),
]


def is_cjk(cp):
    return any(lo <= cp <= hi for lo, hi in CJK)


def slow_text(text):
    kept = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ord(ch) in (0, 0xFFFD) or (ch not in "\t\n\r" and cat.startswith("C")):
            continue
        kept.append(" " if ch in " \t\n\r" or cat == "Zs" else ch)
    spaced = "".join(f" {ch} " if is_cjk(ord(ch)) else ch for ch in kept)
    return " ".join(word.lower() for word in unicodedata.normalize("NFC", spaced).split())


if __name__ == "__main__":
    json.dump({"python": sys.version.split()[0], "unicodedata": unicodedata.unidata_version,
               "cases": [{"group": g, "text": t, "slow_text": slow_text(t)} for g, t in CASES]},
              sys.stdout, ensure_ascii=False, indent=1)
