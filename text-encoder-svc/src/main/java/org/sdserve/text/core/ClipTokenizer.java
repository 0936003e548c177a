package org.sdserve.text.core;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.sdserve.common.error.ModelContractException;
import org.sdserve.common.model.ModelDirectory;

/**
 * CLIP's byte-level BPE tokenizer, reading {@code tokenizer/vocab.json} and {@code merges.txt} as
 * transformers' (slow) CLIPTokenizer does without ftfy: clean and lower-case the text, split it with CLIP's
 * regex, map each piece's UTF-8 bytes through GPT-2's byte-to-unicode table, append {@code </w>} to the last
 * symbol, merge pairs lowest rank first; then {@code <|startoftext|>} ids {@code <|endoftext|>}, truncated and
 * padded to the model length (77) with the pad token the tokenizer files name.
 */
public final class ClipTokenizer {
    /** CLIP's split: special tokens, English contractions, letter runs, single digits, other symbol runs. */
    private static final Pattern SPLIT = Pattern.compile(
            "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+",
            Pattern.CASE_INSENSITIVE | Pattern.UNICODE_CHARACTER_CLASS);
    private static final String[] BYTE_TO_UNICODE = byteToUnicode();
    private static final int MAX_MERGES = 49152 - 256 - 2;

    private final Map<String, Integer> vocab;
    private final Map<String, Integer> mergeRanks;
    private final int bos;
    private final int eos;
    private final int pad;
    private final int unk;
    private final int maxLength;
    private final Map<String, int[]> cache = new ConcurrentHashMap<>();
    /**
     * The BPE cache is bounded: requests of ever new words must not grow the heap (issue 11's fuzzing raised it from
     * 94 to 495 MB). 50,000 entries of word-sized pieces are a few MB and cover a language's common words.
     */
    static final int MAX_CACHED = 50_000;
    static final int MAX_CACHED_PIECE = 32;

    /** Pieces cached now (tests). */
    int cached() {
        return cache.size();
    }

    /** A tokenized text: ids padded to maxLength, and the token count before padding and truncation. */
    public record Tokens(long[] ids, int count, boolean truncated) {
    }

    public ClipTokenizer(Map<String, Integer> vocab, List<String> merges, String bosToken, String eosToken,
                         String padToken, String unkToken, int maxLength) {
        this.vocab = Map.copyOf(vocab);
        this.mergeRanks = new HashMap<>();
        for (int i = 0; i < merges.size(); i++) {
            mergeRanks.putIfAbsent(merges.get(i), i);
        }
        this.bos = id(bosToken, "bos_token");
        this.eos = id(eosToken, "eos_token");
        this.pad = id(padToken, "pad_token");
        this.unk = vocab.containsKey(unkToken) ? vocab.get(unkToken) : eos;
        this.maxLength = maxLength;
    }

    private int id(String token, String role) {
        Integer id = vocab.get(token);
        if (id == null) {
            throw new ModelContractException("tokenizer: " + role + " \"" + token + "\" is not in vocab.json");
        }
        return id;
    }

    /** Reads {@code tokenizer/} of an SD export: vocab.json, merges.txt, special tokens, model_max_length. */
    public static ClipTokenizer load(ModelDirectory model) {
        Path dir = model.component("tokenizer");
        JsonNode vocabJson = model.json("tokenizer/vocab.json");
        Map<String, Integer> vocab = new HashMap<>();
        vocabJson.fields().forEachRemaining(e -> vocab.put(e.getKey(), e.getValue().asInt()));
        List<String> merges = new ArrayList<>();
        try {
            for (String line : Files.readAllLines(dir.resolve("merges.txt"), StandardCharsets.UTF_8)) {
                // transformers reads at most 49152 - 256 - 2 merges, as CLIP was trained with
                if (!line.startsWith("#version") && !line.isBlank() && merges.size() < MAX_MERGES) {
                    merges.add(line);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("tokenizer: cannot read " + dir.resolve("merges.txt"), e);
        }
        JsonNode special = model.optionalJson("tokenizer/special_tokens_map.json").orElse(null);
        JsonNode config = model.optionalJson("tokenizer/tokenizer_config.json").orElse(null);
        String bos = token(special, config, "bos_token", "<|startoftext|>");
        String eos = token(special, config, "eos_token", "<|endoftext|>");
        String pad = token(special, config, "pad_token", eos); // SD 1.x pads with <|endoftext|>, SD 2.x with "!"
        String unk = token(special, config, "unk_token", eos);
        int max = config != null && config.hasNonNull("model_max_length")
                && config.get("model_max_length").asLong() <= 4096 ? config.get("model_max_length").asInt() : 77;
        return new ClipTokenizer(vocab, merges, bos, eos, pad, unk, max);
    }

    private static String token(JsonNode special, JsonNode config, String key, String fallback) {
        for (JsonNode n : new JsonNode[] {special, config}) {
            if (n != null && n.hasNonNull(key)) {
                JsonNode v = n.get(key);
                return v.isTextual() ? v.asText() : v.path("content").asText(fallback);
            }
        }
        return fallback;
    }

    public int maxLength() {
        return maxLength;
    }

    public int padId() {
        return pad;
    }

    public int eosId() {
        return eos;
    }

    /** Token ids of the text between start and end tokens, unpadded and untruncated. */
    public List<Integer> encodeWords(String text) {
        List<Integer> ids = new ArrayList<>();
        Matcher m = SPLIT.matcher(clean(text));
        while (m.find()) {
            String piece = m.group();
            // cached while the cache is below its bound and the piece is word-sized; others are computed each time
            int[] cached = cache.get(piece);
            if (cached == null) {
                cached = bpeIds(piece);
                if (piece.length() <= MAX_CACHED_PIECE && cache.size() < MAX_CACHED) {
                    cache.put(piece, cached);
                }
            }
            for (int id : cached) {
                ids.add(id);
            }
        }
        return ids;
    }

    /** [bos, tokens..., eos] truncated to maxLength (eos kept last) and padded with the pad id. */
    public Tokens encode(String text) {
        List<Integer> words = encodeWords(text);
        int count = words.size() + 2;
        long[] ids = new long[maxLength];
        Arrays.fill(ids, pad);
        ids[0] = bos;
        int n = Math.min(words.size(), maxLength - 2);
        for (int i = 0; i < n; i++) {
            ids[i + 1] = words.get(i);
        }
        ids[n + 1] = eos;
        return new Tokens(ids, count, count > maxLength);
    }

    /**
     * transformers' BasicTokenizer(do_lower_case, no accent stripping, no punctuation split) followed by the
     * join: drop control characters, whitespace to spaces, spaces around CJK ideographs, NFC, split on
     * whitespace, lower-case each word.
     */
    static String clean(String text) {
        StringBuilder sb = new StringBuilder(text.length());
        text.codePoints().forEach(cp -> {
            if (cp == 0 || cp == 0xFFFD || isControl(cp)) {
                return;
            }
            if (isWhitespace(cp)) {
                sb.append(' ');
            } else if (isCjk(cp)) {
                sb.append(' ').appendCodePoint(cp).append(' ');
            } else {
                sb.appendCodePoint(cp);
            }
        });
        String[] words = Normalizer.normalize(sb, Normalizer.Form.NFC).trim().split(" +");
        StringBuilder out = new StringBuilder(sb.length());
        for (String w : words) {
            if (!w.isEmpty()) {
                if (out.length() > 0) {
                    out.append(' ');
                }
                out.append(w.toLowerCase(Locale.ROOT));
            }
        }
        return out.toString();
    }

    /** Python's category "C*" (control, format, private use, surrogate, unassigned) but tab, LF and CR. */
    private static boolean isControl(int cp) {
        if (cp == '\t' || cp == '\n' || cp == '\r') {
            return false;
        }
        int type = Character.getType(cp);
        return type == Character.CONTROL || type == Character.FORMAT || type == Character.PRIVATE_USE
                || type == Character.SURROGATE || type == Character.UNASSIGNED;
    }

    /**
     * Space, tab, LF, CR and category Zs (BERT's whitespace), and the line and paragraph separators that the
     * later {@code str.split()} splits on.
     */
    private static boolean isWhitespace(int cp) {
        int type = Character.getType(cp);
        return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || type == Character.SPACE_SEPARATOR
                || type == Character.LINE_SEPARATOR || type == Character.PARAGRAPH_SEPARATOR;
    }

    private static boolean isCjk(int cp) {
        return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF)
                || (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F)
                || (cp >= 0x2B820 && cp <= 0x2CEAF) || (cp >= 0xF900 && cp <= 0xFAFF)
                || (cp >= 0x2F800 && cp <= 0x2FA1F);
    }

    private int[] bpeIds(String piece) {
        List<String> symbols = new ArrayList<>();
        if (vocab.containsKey(piece) && piece.startsWith("<|") && piece.endsWith("|>")) {
            return new int[] {vocab.get(piece)}; // a special token written in the text
        }
        for (byte b : piece.getBytes(StandardCharsets.UTF_8)) {
            symbols.add(BYTE_TO_UNICODE[b & 0xff]);
        }
        symbols.set(symbols.size() - 1, symbols.get(symbols.size() - 1) + "</w>");
        while (symbols.size() > 1) {
            int best = -1;
            int bestRank = Integer.MAX_VALUE;
            for (int i = 0; i + 1 < symbols.size(); i++) {
                Integer r = mergeRanks.get(symbols.get(i) + " " + symbols.get(i + 1));
                if (r != null && r < bestRank) {
                    bestRank = r;
                    best = i;
                }
            }
            if (best < 0) {
                break;
            }
            String first = symbols.get(best);
            String second = symbols.get(best + 1);
            List<String> merged = new ArrayList<>(symbols.size());
            for (int i = 0; i < symbols.size(); i++) {
                if (i + 1 < symbols.size() && symbols.get(i).equals(first) && symbols.get(i + 1).equals(second)) {
                    merged.add(first + second);
                    i++;
                } else {
                    merged.add(symbols.get(i));
                }
            }
            symbols = merged;
        }
        return symbols.stream().mapToInt(s -> vocab.getOrDefault(s, unk)).toArray();
    }

    /** GPT-2's reversible map from bytes to printable unicode characters. */
    private static String[] byteToUnicode() {
        String[] table = new String[256];
        int n = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            table[b] = printable ? String.valueOf((char) b) : String.valueOf((char) (256 + n++));
        }
        return table;
    }
}
