package org.sdserve.text.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.sdserve.common.model.ModelDirectory;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.testing.DemoModel;

/** An int32 input_ids graph (old diffusers script) from tools/goldens/tiny_graphs.py: hidden = ids as floats. */
class TextEncoderContractTest {
    @Test
    void int32InputIdsAndNoPooler(@TempDir Path dir) throws Exception {
        Path tiny = Path.of(getClass().getResource("/tiny/text-int32/text_encoder/model.onnx").toURI());
        Files.createDirectories(dir.resolve("text_encoder"));
        Files.copy(tiny, dir.resolve("text_encoder/model.onnx"));
        Files.createDirectories(dir.resolve("tokenizer"));
        for (String f : List.of("vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json")) {
            Files.copy(DemoModel.path().resolve("tokenizer").resolve(f), dir.resolve("tokenizer").resolve(f),
                    StandardCopyOption.REPLACE_EXISTING);
        }
        try (TextEncoder te = TextEncoder.load(ModelDirectory.open(dir), ExecutionOptions.CPU)) {
            TextEncoder.Encoding e = te.encode(List.of("a red circle"), false);
            long[] ids = te.tokenizer().encode("a red circle").ids();
            for (int i = 0; i < 77; i++) {
                assertEquals(ids[i], (long) e.lastHiddenState().data()[i]);
            }
            assertNull(e.pooled());
            assertEquals(1, te.width());
        }
    }
}
