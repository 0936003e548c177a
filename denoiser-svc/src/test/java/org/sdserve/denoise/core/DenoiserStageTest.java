package org.sdserve.denoise.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.common.error.JobCancelledException;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.tensor.FloatTensor;
import org.sdserve.common.testing.DemoModel;

/** The demo model's UNet and the denoising loop on a real ONNX Runtime session. */
class DenoiserStageTest {
    private static Denoiser denoiser;

    @BeforeAll
    static void load() {
        denoiser = Denoiser.load(DemoModel.directory(), ExecutionOptions.CPU);
    }

    @AfterAll
    static void close() {
        denoiser.close();
    }

    /** Any [B,77,W] states exercise the loop's contracts; the UNet's numbers are checked in the test below. */
    private static FloatTensor embeds() {
        return DemoModel.pattern(new long[] {1, 77, 128}, 0.01);
    }

    private static DenoiseJob job(String scheduler, int steps, long... seeds) {
        return new DenoiseJob(embeds(), DemoModel.pattern(new long[] {1, 77, 128}, 0.02), 64, 64, steps, 7.5f,
                scheduler, seeds, 0, 0f, null, 0, 0);
    }

    private static final class Recorder implements StepListener {
        final List<Integer> steps = new ArrayList<>();
        int cancelAfter = Integer.MAX_VALUE;

        @Override
        public void onStep(int step, int total, double timestep, List<byte[]> previews) {
            steps.add(step);
        }

        @Override
        public boolean cancelled() {
            return steps.size() >= cancelAfter;
        }
    }

    @Test
    void unetMatchesPyTorchOutputForTheRecordedInputs() {
        JsonNode ref = DemoModel.reference().get("unet");
        FloatTensor out = denoiser.unet().predict(DemoModel.pattern(new long[] {2, 4, 8, 8}, 0.1),
                ref.get("timestep").asDouble(), DemoModel.pattern(new long[] {2, 77, 128}, 0.03));
        DemoModel.assertMatches(ref.get("out_sample"), out, 1e-4, "out_sample");
    }

    @Test
    void everySchedulerRunsAndReportsEachUnetStepOnceInOrder() {
        for (String s : org.sdserve.denoise.scheduler.Schedulers.NAMES) {
            Recorder r = new Recorder();
            FloatTensor out = denoiser.denoise(job(s, 6, 1, 2), r);
            int calls = org.sdserve.denoise.scheduler.Schedulers.create(s, denoiser.schedulerConfig(), 6, 0f).steps();
            assertEquals(java.util.stream.IntStream.rangeClosed(1, calls).boxed().toList(), r.steps, s);
            assertArrayEquals(new long[] {2, 4, 8, 8}, out.shape(), s);
            for (float v : out.data()) {
                assertTrue(Float.isFinite(v), s + " produced a non-finite latent");
            }
        }
    }

    @Test
    void sameSeedSameLatentsAndAnImageDoesNotDependOnItsBatch() {
        FloatTensor a = denoiser.denoise(job("euler_a", 5, 11), new Recorder());
        FloatTensor b = denoiser.denoise(job("euler_a", 5, 11), new Recorder());
        assertArrayEquals(a.data(), b.data());
        FloatTensor batch = denoiser.denoise(job("euler_a", 5, 3, 11), new Recorder());
        float[] second = Arrays.copyOfRange(batch.data(), a.data().length, 2 * a.data().length);
        for (int i = 0; i < second.length; i++) {
            assertEquals(a.data()[i], second[i], 1e-4f, "seed 11 as item 1 of a batch");
        }
        FloatTensor c = denoiser.denoise(job("euler_a", 5, 12), new Recorder());
        assertFalse(Arrays.equals(a.data(), c.data()));
    }

    @Test
    void cancellationStopsBeforeTheNextStep() {
        Recorder r = new Recorder();
        r.cancelAfter = 3;
        assertThrows(JobCancelledException.class, () -> denoiser.denoise(job("ddim", 50, 1), r));
        assertEquals(List.of(1, 2, 3), r.steps);
    }

    @Test
    void aJobSplitAcrossTwoCallsMatchesAnUninterruptedRun() {
        for (String s : List.of("ddim", "euler_a")) {
            DenoiseJob whole = job(s, 8, 5);
            FloatTensor full = denoiser.denoise(whole, new Recorder());
            FloatTensor firstPart = denoiser.denoise(withRange(whole, null, 0, 3), new Recorder());
            Recorder rest = new Recorder();
            FloatTensor resumed = denoiser.denoise(withRange(whole, firstPart, 3, 0), rest);
            assertEquals(List.of(4, 5, 6, 7, 8), rest.steps, s);
            assertArrayEquals(full.data(), resumed.data(), s);
        }
    }

    private static DenoiseJob withRange(DenoiseJob j, FloatTensor init, int start, int end) {
        return new DenoiseJob(j.promptEmbeds(), j.negativeEmbeds(), j.width(), j.height(), j.steps(),
                j.guidanceScale(), j.scheduler(), j.seeds(), j.previewInterval(), j.eta(), init, start, end);
    }

    @Test
    void validatesTheJobAgainstTheModel() {
        assertTrue(assertThrows(InvalidRequestException.class, () -> denoiser.denoise(new DenoiseJob(embeds(), null,
                72, 64, 5, 1f, "ddim", new long[] {1}, 0, 0f, null, 0, 0), new Recorder())).getMessage()
                .contains("multiples of 16"));
        assertTrue(assertThrows(InvalidRequestException.class, () -> denoiser.denoise(new DenoiseJob(embeds(), null,
                64, 64, 5, 7.5f, "ddim", new long[] {1}, 0, 0f, null, 0, 0), new Recorder())).getMessage()
                .contains("negative_embeds are required"));
        assertTrue(assertThrows(InvalidRequestException.class, () -> denoiser.denoise(new DenoiseJob(
                DemoModel.pattern(new long[] {1, 77, 64}, 0.1), null, 64, 64, 5, 1f, "ddim", new long[] {1}, 0, 0f,
                null, 0, 0), new Recorder())).getMessage().contains("does not match the UNet"));
        assertEquals("prompt_embeds must have 77 tokens per row, as the UNet's encoder_hidden_states, got 78",
                assertThrows(InvalidRequestException.class, () -> denoiser.denoise(new DenoiseJob(
                        DemoModel.pattern(new long[] {1, 78, 128}, 0.1), null, 64, 64, 5, 1f, "ddim", new long[] {1},
                        0, 0f, null, 0, 0), new Recorder())).getMessage());
        assertTrue(assertThrows(InvalidRequestException.class, () -> denoiser.denoise(job("plms", 5, 1),
                new Recorder())).getMessage().contains("valid: ddim, euler"));
    }

    @Test
    void geometryComesFromTheConfigs() {
        assertEquals(new ModelGeometry(8, 16, 64, 64), denoiser.geometry());
    }
}
