"""Build a CLIP-format byte-level BPE vocabulary for the demo captions, and encode text with it.

The files written (vocab.json, merges.txt) follow the layout of openai/clip-vit-large-patch14's tokenizer:
ids 0..255 are the byte symbols, 256..511 the same with '</w>', then one id per merge in rank order, then
<|startoftext|> and <|endoftext|> as the two last ids. The Java tokenizer reads these files exactly as it
reads the real CLIP vocabulary.
"""
import collections
import json
import re

SOT, EOT = "<|startoftext|>", "<|endoftext|>"
MAX_LEN = 77


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable unicode character table (as CLIP uses it)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


BYTE_ENCODER = bytes_to_unicode()


def word_symbols(word):
    syms = [BYTE_ENCODER[b] for b in word.encode("utf-8")]
    syms[-1] += "</w>"
    return syms


def learn(words):
    """Learn merges until every word of the corpus is one symbol. words: Counter of words."""
    corpus = {w: word_symbols(w) for w in words}
    merges = []
    while True:
        pairs = collections.Counter()
        for w, syms in corpus.items():
            for a, b in zip(syms, syms[1:]):
                pairs[(a, b)] += words[w]
        if not pairs:
            break
        # most frequent pair; ties broken by the pair text, so the result is deterministic
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        for w, syms in corpus.items():
            out, i = [], 0
            while i < len(syms):
                if i + 1 < len(syms) and (syms[i], syms[i + 1]) == best:
                    out.append(syms[i] + syms[i + 1])
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            corpus[w] = out
    base = list(BYTE_ENCODER.values())
    vocab_list = base + [s + "</w>" for s in base] + ["".join(m) for m in merges] + [SOT, EOT]
    vocab = {tok: i for i, tok in enumerate(vocab_list)}
    return vocab, merges


def save(vocab, merges, directory):
    with open(f"{directory}/vocab.json", "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(f"{directory}/merges.txt", "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")


class Tokenizer:
    """Encodes like transformers' CLIPTokenizer (without ftfy) for the lower-case ASCII text the demo uses."""

    def __init__(self, vocab, merges):
        self.vocab = vocab
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.sot, self.eot = vocab[SOT], vocab[EOT]

    def bpe(self, word):
        syms = word_symbols(word)
        while len(syms) > 1:
            pairs = [(self.ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(syms, syms[1:]))]
            rank, i = min(pairs)
            if rank == 1 << 30:
                break
            first, second = syms[i], syms[i + 1]
            out, j = [], 0
            while j < len(syms):
                if j + 1 < len(syms) and syms[j] == first and syms[j + 1] == second:
                    out.append(first + second)
                    j += 2
                else:
                    out.append(syms[j])
                    j += 1
            syms = out
        return syms

    def encode(self, text):
        text = re.sub(r"\s+", " ", text).strip().lower()
        ids = [self.sot]
        for word in re.findall(r"[a-z]+|[0-9]|[^\sa-z0-9]+", text):
            ids += [self.vocab[s] for s in self.bpe(word)]
        ids = ids[: MAX_LEN - 1] + [self.eot]
        return ids + [self.eot] * (MAX_LEN - len(ids))  # SD 1.x pads with <|endoftext|>
