package org.sdserve.text.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.common.error.JobCancelledException;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.onnx.RunStop;
import org.sdserve.common.testing.DemoModel;

/** The demo model's text encoder in a real ONNX Runtime session, against the PyTorch outputs recorded at export. */
class TextEncoderStageTest {
    private static TextEncoder encoder;

    @BeforeAll
    static void load() {
        encoder = TextEncoder.load(DemoModel.directory(), ExecutionOptions.CPU);
    }

    @AfterAll
    static void close() {
        encoder.close();
    }

    @Test
    void matchesPyTorchOutputs() {
        JsonNode ref = DemoModel.reference().get("text_encoder");
        List<String> prompts = List.of(ref.get("prompts").get(0).asText(), ref.get("prompts").get(1).asText());
        TextEncoder.Encoding e = encoder.encode(prompts, false);
        DemoModel.assertMatches(ref.get("last_hidden_state"), e.lastHiddenState(), 1e-4, "last_hidden_state");
        DemoModel.assertMatches(ref.get("pooler_output"), e.pooled(), 1e-4, "pooler_output");
        assertEquals(2, e.tokenCounts()[0]);
    }

    @Test
    void reportsWidthAndRefusesOverlongTextWhenAsked() {
        assertEquals(128, encoder.width());
        InvalidRequestException ex = assertThrows(InvalidRequestException.class,
                () -> encoder.encode(List.of("ok", "red ".repeat(90)), true));
        assertTrue(ex.getMessage().startsWith("text 1 is 90 tokens long; at most 75 fit"), ex.getMessage());
        assertEquals(77, encoder.encode(List.of("red ".repeat(90)), false).lastHiddenState().dim(1));
    }

    @Test
    void refusesATextOverTheCharacterLimitBeforeTokenizingIt() {
        InvalidRequestException ex = assertThrows(InvalidRequestException.class,
                () -> encoder.encode(List.of("a cat", "x".repeat(TextEncoder.MAX_TEXT_CHARS + 1)), false));
        assertEquals("text 1 must be at most 10000 characters, got 10001", ex.getMessage());
    }

    @Test
    void anEncodeWhoseCallerHasGoneIsGivenUp() {
        RunStop stop = new RunStop();
        stop.stop();
        assertThrows(JobCancelledException.class, () -> encoder.encode(List.of("a red circle"), false, stop));
        // not fired: the same states as without a stop
        assertArrayEquals(encoder.encode(List.of("a red circle"), false).lastHiddenState().data(),
                encoder.encode(List.of("a red circle"), false, new RunStop()).lastHiddenState().data());
    }
}
