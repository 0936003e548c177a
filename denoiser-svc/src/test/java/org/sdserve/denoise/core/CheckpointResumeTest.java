package org.sdserve.denoise.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.tensor.FloatTensor;
import org.sdserve.common.testing.DemoModel;
import org.sdserve.denoise.scheduler.Scheduler;
import org.sdserve.denoise.scheduler.Schedulers;

/**
 * Checkpoints on the demo model's real UNet: a run continued from any of its checkpoints, in a fresh run (as on
 * another replica), ends with the very latents of the undisturbed run, for every scheduler, multistep history,
 * Heun's half steps and the stochastic schedulers' noise included.
 */
class CheckpointResumeTest {
    private static Denoiser denoiser;

    @BeforeAll
    static void load() {
        denoiser = Denoiser.load(DemoModel.directory(), ExecutionOptions.CPU);
    }

    @AfterAll
    static void close() {
        denoiser.close();
    }

    private static DenoiseJob job(String scheduler, int steps, float eta, int checkpointInterval) {
        return new DenoiseJob(DemoModel.pattern(new long[] {1, 77, 128}, 0.01),
                DemoModel.pattern(new long[] {1, 77, 128}, 0.02), 64, 64, steps, 7.5f, scheduler, new long[] {7, 8},
                0, eta, null, 0, 0, null, checkpointInterval);
    }

    /** Records steps and keeps every checkpoint. */
    private static final class Recorder implements StepListener {
        final List<Integer> steps = new ArrayList<>();
        final List<Checkpoint> checkpoints = new ArrayList<>();

        @Override
        public void onStep(int step, int total, double timestep, List<byte[]> previews) {
            steps.add(step);
        }

        @Override
        public void onCheckpoint(Checkpoint c) {
            checkpoints.add(c);
        }

        @Override
        public boolean cancelled() {
            return false;
        }
    }

    @Test
    void everySchedulerResumedFromAnyCheckpointEndsBitForBitAsTheUndisturbedRun() {
        List<DenoiseJob> jobs = new ArrayList<>();
        for (String s : Schedulers.NAMES) {
            jobs.add(job(s, 6, 0f, 1));
        }
        jobs.add(job("ddim", 6, 0.7f, 1)); // DDIM's stochastic variant
        jobs.add(job("tcd", 6, 0.3f, 1)); // TCD with gamma 0.3 (its pipeline's default) draws noise
        for (DenoiseJob j : jobs) {
            String name = j.scheduler() + " eta " + j.eta();
            Recorder whole = new Recorder();
            FloatTensor reference = denoiser.denoise(j, whole);
            int calls = whole.steps.size();
            assertEquals(calls - 1, whole.checkpoints.size(), name + ": one checkpoint per call but the last");
            for (Checkpoint c : whole.checkpoints) {
                Recorder rest = new Recorder();
                FloatTensor resumed = denoiser.denoise(j.resumedFrom(c, 0), rest);
                assertEquals(c.step() + 1, rest.steps.get(0), name + ": the first step after the checkpoint");
                assertEquals(calls, rest.steps.get(rest.steps.size() - 1), name);
                assertArrayEquals(reference.data(), resumed.data(), name + " resumed after call " + c.step());
            }
        }
    }

    /**
     * Image-to-image (image_latents + strength): the run starts at t_start x order (steps 6, strength 0.5: the last
     * 3 inference steps; Heun's calls from 2 x 3), reports absolute step numbers, and resumes bit for bit from any
     * checkpoint, whose noise_draws count the posterior sample and the add_noise draw.
     */
    @Test
    void imageToImageStartsWhereTheStrengthSaysAndResumesBitForBit() {
        FloatTensor image = DemoModel.pattern(new long[] {2, 4, 8, 8}, 0.3);
        for (String s : List.of("ddim", "euler_a", "heun", "dpmpp_2m", "pndm", "lms", "unipc")) {
            DenoiseJob plain = job(s, 6, 0f, 1);
            DenoiseJob j = new DenoiseJob(plain.promptEmbeds(), plain.negativeEmbeds(), 64, 64, 6, 7.5f, s,
                    plain.seeds(), 0, 0f, null, 0, 0, null, 1, new DenoiseJob.ImageToImage(image, 0.5f));
            Recorder whole = new Recorder();
            FloatTensor reference = denoiser.denoise(j, whole);
            int start = s.equals("heun") ? 6 : 3;
            assertEquals(start + 1, whole.steps.get(0), s + ": the first call run");
            assertEquals(whole.steps.size() - 1, whole.checkpoints.size(), s);
            long before = 2; // the posterior sample, then the add_noise draw
            assertEquals(before, whole.checkpoints.get(0).noiseDraws() - (s.equals("euler_a") ? 1 : 0), s);
            for (Checkpoint c : whole.checkpoints) {
                FloatTensor resumed = denoiser.denoise(j.resumedFrom(c, 0), new Recorder());
                assertArrayEquals(reference.data(), resumed.data(), s + " resumed after call " + c.step());
            }
        }
        // inpainting (a mask: the left half repainted, at strength 1 and 0.5): its blending resumes exactly too
        float[] half = new float[64];
        for (int i = 0; i < 64; i++) {
            half[i] = i % 8 < 4 ? 1f : 0f;
        }
        FloatTensor mask = new FloatTensor(new long[] {1, 1, 8, 8}, half);
        for (String s : List.of("euler_a", "dpmpp_2m", "heun")) {
            for (float strength : new float[] {1f, 0.5f}) {
                DenoiseJob plain = job(s, 6, 0f, 1);
                DenoiseJob j = new DenoiseJob(plain.promptEmbeds(), plain.negativeEmbeds(), 64, 64, 6, 7.5f, s,
                        plain.seeds(), 0, 0f, null, 0, 0, null, 1, new DenoiseJob.ImageToImage(image, strength, mask));
                Recorder whole = new Recorder();
                FloatTensor reference = denoiser.denoise(j, whole);
                for (int k = 4 * 64; k < 4 * 64 + 64; k++) { // image 1, channel 0: kept where the mask is 0
                    if (half[k % 64] == 0f) {
                        assertEquals(image.data()[k], reference.data()[k], s + ": a kept latent");
                    }
                }
                for (Checkpoint c : whole.checkpoints) {
                    assertArrayEquals(reference.data(), denoiser.denoise(j.resumedFrom(c, 0), new Recorder()).data(),
                            s + " inpainting at strength " + strength + " resumed after call " + c.step());
                }
            }
        }
        DenoiseJob plain = job("ddim", 6, 0f, 0);
        assertEquals("strength 0.1 of 6 steps runs no step (the last int(steps x strength) run): raise strength or "
                + "steps", message(new DenoiseJob(plain.promptEmbeds(), plain.negativeEmbeds(), 64, 64, 6, 7.5f,
                "ddim", plain.seeds(), 0, 0f, null, 0, 0, null, 0, new DenoiseJob.ImageToImage(image, 0.1f))));
        assertEquals("image_latents must have shape [2, 4, 8, 8], got [1, 4, 8, 8]", message(new DenoiseJob(
                plain.promptEmbeds(), plain.negativeEmbeds(), 64, 64, 6, 7.5f, "ddim", plain.seeds(), 0, 0f, null, 0,
                0, null, 0, new DenoiseJob.ImageToImage(image.slice(0, 1), 0.5f))));
    }

    @Test
    void multistepHistoryIsInTheCheckpoint() {
        Recorder r = new Recorder();
        denoiser.denoise(job("lms", 8, 0f, 3), r);
        assertEquals(List.of(3, 6), r.checkpoints.stream().map(Checkpoint::step).toList());
        assertEquals(3, r.checkpoints.get(0).history().list("derivatives").size());
        assertEquals(4, r.checkpoints.get(1).history().list("derivatives").size());
        assertEquals(2 * 4 * 8 * 8, r.checkpoints.get(1).history().list("derivatives").get(0).length);
        // without its history, lms continued from the latents alone ends elsewhere (what start_step does)
        Checkpoint c = r.checkpoints.get(0);
        FloatTensor exact = denoiser.denoise(job("lms", 8, 0f, 0).resumedFrom(c, 0), new Recorder());
        DenoiseJob plain = job("lms", 8, 0f, 0);
        FloatTensor restarted = denoiser.denoise(new DenoiseJob(plain.promptEmbeds(), plain.negativeEmbeds(), 64, 64,
                8, 7.5f, "lms", plain.seeds(), 0, 0f, c.latents(), c.step(), 0), new Recorder());
        assertTrue(!java.util.Arrays.equals(exact.data(), restarted.data()));
    }

    @Test
    void aCheckpointThatDoesNotFitTheJobIsRefused() {
        Recorder r = new Recorder();
        denoiser.denoise(job("dpmpp_2m", 6, 0f, 2), r);
        Checkpoint c = r.checkpoints.get(0); // after 2 calls: previous_x0 held
        DenoiseJob j = job("dpmpp_2m", 6, 0f, 0);
        assertEquals("resume.noise_draws must be 1 at step 2 of dpmpp_2m, got 5", message(j.resumedFrom(
                new Checkpoint(2, c.latents(), c.history(), 5), 0)));
        assertEquals("resume.history must hold previous_x0 x 1 arrays of 512 values at step 2 of dpmpp_2m, got "
                + "none", message(j.resumedFrom(new Checkpoint(2, c.latents(), Scheduler.History.NONE, 1), 0)));
        assertTrue(message(j.resumedFrom(new Checkpoint(2, c.latents(), new Scheduler.History(Map.of(
                "previous_x0", List.of(new float[3]))), 1), 0)).startsWith("resume.history must hold"));
        assertEquals("resume.step must be in [1, 6) for dpmpp_2m with 6 steps, got 6", message(j.resumedFrom(
                new Checkpoint(6, c.latents(), c.history(), 1), 0)));
        assertEquals("resume.latents must have shape [2, 4, 8, 8], got [1, 4, 8, 8]", message(j.resumedFrom(
                new Checkpoint(2, c.latents().slice(0, 1), c.history(), 1), 0)));
        DenoiseJob img2img = new DenoiseJob(j.promptEmbeds(), j.negativeEmbeds(), 64, 64, 6, 7.5f, "dpmpp_2m",
                j.seeds(), 0, 0f, c.latents(), 1, 0, c, 0);
        assertTrue(message(img2img).startsWith("resume excludes init_latents and start_step"));
    }

    private static String message(DenoiseJob j) {
        return assertThrows(InvalidRequestException.class, () -> denoiser.denoise(j, new Recorder())).getMessage();
    }
}
