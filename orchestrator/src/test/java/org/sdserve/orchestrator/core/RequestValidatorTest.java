package org.sdserve.orchestrator.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.proto.v1.GenerateRequest;
import org.sdserve.proto.v1.ModelDescription;

class RequestValidatorTest {
    /** What an SD 1.5 export's denoiser describes. */
    private static final ModelDescription SD15 = ModelDescription.newBuilder().setModel("sd15").setDefaultWidth(512)
            .setDefaultHeight(512).setSizeMultiple(64).setVaeFactor(8).setLatentChannels(4)
            .addAllSchedulers(List.of("ddim", "euler", "euler_a", "dpmpp_2m")).setDefaultScheduler("ddim").build();
    private final RequestValidator validator = new RequestValidator(Limits.DEFAULT, () -> 4242L);

    @Test
    void fillsTheDefaults() {
        GenerateRequest r = validator.resolve(GenerateRequest.newBuilder().setPrompt("a fox").build(), SD15);
        assertEquals(512, r.getWidth());
        assertEquals(512, r.getHeight());
        assertEquals(25, r.getSteps());
        assertEquals(7.5f, r.getGuidanceScale());
        assertEquals("ddim", r.getScheduler());
        assertEquals(1, r.getNumImages());
        assertEquals(4242L, r.getSeed());
        assertEquals("sd15", r.getModel());
    }

    @Test
    void keepsWhatWasAskedAndGivesOneSeedPerImage() {
        GenerateRequest r = validator.resolve(GenerateRequest.newBuilder().setPrompt("a fox").setWidth(768)
                .setHeight(512).setSteps(30).setGuidanceScale(0f).setScheduler("EULER_A").setSeed(-1L)
                .setNumImages(3).build(), SD15);
        assertEquals(768, r.getWidth());
        assertEquals(0f, r.getGuidanceScale());
        assertEquals("euler_a", r.getScheduler());
        assertArrayEquals(new long[] {-1L, 0L, 1L}, RequestValidator.seeds(r)); // unsigned wrap-around
    }

    @Test
    void refusesSizesOffTheModelsMultiple() {
        InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> validator.resolve(
                GenerateRequest.newBuilder().setPrompt("a fox").setWidth(520).build(), SD15));
        assertEquals("width must be a multiple of 64 in [64, 2048], got 520", e.getMessage());
    }

    @Test
    void boundsThePixelsOfARequest() {
        InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> validator.resolve(
                GenerateRequest.newBuilder().setPrompt("a fox").setWidth(2048).setHeight(2048).setNumImages(2).build(),
                SD15));
        assertEquals("width x height x num_images must be at most 4194304 pixels, got 2048x2048x2", e.getMessage());
    }

    @Test
    void refusesInfiniteGuidanceAndLongPrompts() {
        assertThrows(InvalidRequestException.class, () -> validator.resolve(GenerateRequest.newBuilder()
                .setPrompt("a fox").setGuidanceScale(Float.POSITIVE_INFINITY).build(), SD15));
        assertThrows(InvalidRequestException.class, () -> validator.resolve(GenerateRequest.newBuilder()
                .setPrompt("x".repeat(RequestValidator.MAX_PROMPT_CHARS + 1)).build(), SD15));
        assertThrows(InvalidRequestException.class, () -> validator.resolve(GenerateRequest.newBuilder()
                .setPrompt("a fox").setPreviewInterval(40).setSteps(20).build(), SD15));
    }

    private String refusal(GenerateRequest.Builder r) {
        return assertThrows(InvalidRequestException.class, () -> validator.resolve(r.setPrompt("a fox").build(),
                SD15)).getMessage();
    }

    @Test
    void uint32FieldsOfTwoToThe31AndMoreAreReadUnsigned() {
        int big = 1 << 31; // 2147483648 on the wire, Integer.MIN_VALUE in Java
        assertEquals("width must be a multiple of 64 in [64, 2048], got 2147483648",
                refusal(GenerateRequest.newBuilder().setWidth(big)));
        assertEquals("steps must be in [1, 200], got 4294967295", refusal(GenerateRequest.newBuilder().setSteps(-1)));
        assertEquals("num_images must be in [1, 8], got 2147483648",
                refusal(GenerateRequest.newBuilder().setNumImages(big)));
        assertEquals("preview_interval must be in [0, steps=25], got 2147483648",
                refusal(GenerateRequest.newBuilder().setPreviewInterval(big)));
    }

    @Test
    void longStringsAreNotEchoedWhole() {
        String message = refusal(GenerateRequest.newBuilder().setScheduler("s".repeat(9000)));
        assertTrue(message.length() < 200, message);
        assertTrue(message.startsWith("scheduler: unknown \"" + "s".repeat(64) + "... (9000 characters)\""), message);
        assertTrue(refusal(GenerateRequest.newBuilder().setModel("m".repeat(9000))).contains("(9000 characters)"));
    }
}
