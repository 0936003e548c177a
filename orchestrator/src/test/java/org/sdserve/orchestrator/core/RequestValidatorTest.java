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
    void aSizeTheDenoisersMemoryBudgetCannotHoldIsRefusedWithTheLargestThatFits() {
        // as a denoiser with a 6 GiB budget describes the demo model's measured costs (margin included)
        ModelDescription budgeted = SD15.toBuilder().setMemoryBudgetBytes(6L << 30)
                .setActivationBytesPerTokenPair(3.0).setActivationBytesPerToken(2783).build();
        GenerateRequest ok = validator.resolve(GenerateRequest.newBuilder().setPrompt("a fox").setWidth(1024)
                .setHeight(1024).build(), budgeted);
        assertEquals(1024, ok.getWidth());
        String refused = assertThrows(InvalidRequestException.class, () -> validator.resolve(GenerateRequest
                .newBuilder().setPrompt("a fox").setWidth(2048).setHeight(2048).build(), budgeted)).getMessage();
        assertEquals("2048x2048 with 1 image(s) and guidance needs about 24.3 GiB of denoiser memory; its replicas' "
                + "budget is 6.0 GiB: at most 1408x1408 fits with 1 image(s)", refused);
        // without guidance an image is one UNet row: twice the room
        validator.resolve(GenerateRequest.newBuilder().setPrompt("a fox").setWidth(1408).setHeight(1408)
                .setGuidanceScale(1f).setNumImages(2).build(), budgeted);
        assertTrue(assertThrows(InvalidRequestException.class, () -> validator.resolve(GenerateRequest.newBuilder()
                .setPrompt("a fox").setWidth(1408).setHeight(1408).setNumImages(2).build(), budgeted)).getMessage()
                .endsWith("at most 1152x1152 fits with 2 image(s)"));
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
