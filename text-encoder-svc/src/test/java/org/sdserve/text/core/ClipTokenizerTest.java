package org.sdserve.text.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.sdserve.common.model.ModelDirectory;
import org.sdserve.common.testing.DemoModel;

class ClipTokenizerTest {
    /**
     * transformers' tests/models/clip/test_tokenization_clip.py: the tiny vocabulary and merges of its setUp,
     * "lower newer" -> ["lo", "w", "er</w>", "n", "e", "w", "er</w>"], ids [10, 2, 16, 9, 3, 2, 16].
     */
    @Test
    void transformersTinyVocabularyCase(@TempDir Path dir) throws Exception {
        String[] tokens = {"l", "o", "w", "e", "r", "s", "t", "i", "d", "n", "lo", "l</w>", "w</w>", "r</w>", "t</w>",
            "low</w>", "er</w>", "lowest</w>", "newer</w>", "wider", "<unk>", "<|startoftext|>", "<|endoftext|>"};
        Map<String, Integer> vocab = new HashMap<>();
        for (int i = 0; i < tokens.length; i++) {
            vocab.put(tokens[i], i);
        }
        ClipTokenizer tok = new ClipTokenizer(vocab, List.of("l o", "lo w</w>", "e r</w>"), "<|startoftext|>",
                "<|endoftext|>", "<|endoftext|>", "<unk>", 77);
        List<Integer> ids = tok.encodeWords("lower newer");
        assertEquals(List.of(10, 2, 16, 9, 3, 2, 16), ids);
        // Same through the files an SD export ships.
        Path t = Files.createDirectories(dir.resolve("tokenizer"));
        StringBuilder json = new StringBuilder("{");
        for (int i = 0; i < tokens.length; i++) {
            json.append(i > 0 ? "," : "").append('"').append(tokens[i]).append("\":").append(i);
        }
        Files.writeString(t.resolve("vocab.json"), json.append('}'));
        Files.writeString(t.resolve("merges.txt"), "#version: 0.2\nl o\nlo w</w>\ne r</w>\n");
        Files.writeString(t.resolve("special_tokens_map.json"), "{\"pad_token\": \"<|endoftext|>\", "
                + "\"unk_token\": {\"content\": \"<unk>\"}}");
        ClipTokenizer fromFiles = ClipTokenizer.load(ModelDirectory.open(dir));
        assertEquals(ids, fromFiles.encodeWords("lower newer"));
        ClipTokenizer.Tokens padded = fromFiles.encode("lower newer");
        assertEquals(21, padded.ids()[0]);
        assertEquals(22, padded.ids()[8]);
        assertEquals(22, padded.ids()[76]);
        assertEquals(9, padded.count());
    }

    @Test
    void matchesThePythonTokenizerOfTheDemoModel() {
        // reference_outputs.json holds the ids tools/demo-model/clip_bpe.py produced for these prompts.
        JsonNode ref = DemoModel.reference().get("text_encoder");
        ClipTokenizer tok = ClipTokenizer.load(DemoModel.directory());
        for (int p = 0; p < ref.get("prompts").size(); p++) {
            long[] want = new long[77];
            for (int i = 0; i < 77; i++) {
                want[i] = ref.get("input_ids").get(p).get(i).asLong();
            }
            assertArrayEquals(want, tok.encode(ref.get("prompts").get(p).asText()).ids());
        }
    }

    @Test
    void padsWithThePadTokenTheFilesName(@TempDir Path dir) throws Exception {
        // SD 2.x tokenizers name "!" (id 0 in CLIP's vocabulary, the first byte symbol) as pad_token
        Path t = Files.createDirectories(dir.resolve("tokenizer"));
        for (String f : List.of("vocab.json", "merges.txt", "tokenizer_config.json")) {
            Files.copy(DemoModel.path().resolve("tokenizer").resolve(f), t.resolve(f));
        }
        Files.writeString(t.resolve("special_tokens_map.json"), "{\"pad_token\": \"!\"}");
        ClipTokenizer sd2 = ClipTokenizer.load(ModelDirectory.open(dir));
        ClipTokenizer.Tokens tokens = sd2.encode("a red circle");
        assertEquals(0, sd2.padId());
        assertEquals(sd2.eosId(), tokens.ids()[4]);
        assertEquals(0, tokens.ids()[5]);
        assertEquals(0, tokens.ids()[76]);
    }

    @Test
    void cleansWhitespaceCaseAndControlCharacters() {
        assertEquals("a red circle", ClipTokenizer.clean("  A\tRED\n\n circle \u0000\u200b"));
        assertEquals("日 本", ClipTokenizer.clean("日本"));
        assertEquals("café déjà-vu", ClipTokenizer.clean("Café  Déjà-vu"));
    }

    @Test
    void truncatesToTheModelLengthKeepingTheEndToken() {
        ClipTokenizer tok = ClipTokenizer.load(DemoModel.directory());
        ClipTokenizer.Tokens t = tok.encode("red ".repeat(100));
        assertTrue(t.truncated());
        assertEquals(102, t.count());
        assertEquals(tok.eosId(), t.ids()[76]);
        assertFalse(tok.encode("a red circle").truncated());
    }

    @Test
    void unknownWordsFallBackToByteSymbols() {
        ClipTokenizer tok = ClipTokenizer.load(DemoModel.directory());
        List<Integer> ids = new ArrayList<>(tok.encodeWords("zebra!! 42 don't"));
        assertFalse(ids.isEmpty());
        assertTrue(ids.stream().allMatch(i -> i >= 0 && i < 49408));
    }

    @Test
    void theBpeCacheStaysBoundedUnderEverNewWords() {
        ClipTokenizer tok = ClipTokenizer.load(DemoModel.directory());
        StringBuilder text = new StringBuilder();
        for (int i = 0; i < ClipTokenizer.MAX_CACHED + 5_000; i++) {
            text.append("w").append(Integer.toString(i, 26).replaceAll("[0-9]", "q")).append(' ');
            if (text.length() > 5_000) {
                tok.encodeWords(text.toString());
                text.setLength(0);
            }
        }
        tok.encodeWords(text.toString());
        assertTrue(tok.cached() <= ClipTokenizer.MAX_CACHED, tok.cached() + " pieces cached");
        List<Integer> once = tok.encodeWords("a " + "z".repeat(500) + " b"); // a long piece: computed, not kept
        assertEquals(once, tok.encodeWords("a " + "z".repeat(500) + " b"));
    }
}
