package org.sdserve.denoise.batch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.sdserve.common.error.JobCancelledException;
import org.sdserve.common.model.ModelDirectory;
import org.sdserve.common.noise.TorchGenerator;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.tensor.FloatTensor;
import org.sdserve.common.testing.DemoModel;
import org.sdserve.denoise.core.DenoiseJob;
import org.sdserve.denoise.core.Denoiser;
import org.sdserve.denoise.core.ModelGeometry;
import org.sdserve.denoise.core.StepListener;
import org.sdserve.denoise.core.UNet;
import org.sdserve.denoise.scheduler.SchedulerConfig;

/**
 * Step-level batching on real ONNX Runtime sessions: merged UNet calls give every job the latents it gets alone,
 * bit for bit, and rows merge only where the graph allows (per-row timestep, or the same rank-0 timestep).
 */
class StepBatchingTest {
    /** A window long enough that jobs submitted back to back share their first call too. */
    private static final BatchSettings WINDOWED = new BatchSettings(true, 16, Duration.ofMillis(200));

    private static final StepListener QUIET = new StepListener() {
        @Override
        public void onStep(int step, int total, double timestep, List<byte[]> previews) { }

        @Override
        public boolean cancelled() {
            return false;
        }
    };

    private static DenoiseJob job(String scheduler, int steps, float guidance, long... seeds) {
        return new DenoiseJob(DemoModel.pattern(new long[] {1, 77, 128}, 0.01),
                DemoModel.pattern(new long[] {1, 77, 128}, 0.02), 64, 64, steps, guidance, scheduler, seeds, 0, 0f,
                null, 0, 0);
    }

    /** Mixed jobs: guided and not, one and two images, stochastic and not, different step counts. */
    private static List<DenoiseJob> mixed() {
        return List.of(job("euler_a", 8, 7.5f, 11), job("euler_a", 8, 1f, 12, 13), job("ddim", 8, 3f, 14),
                job("dpmpp_2m", 5, 7.5f, 15, 16), job("euler_a", 8, 7.5f, 17));
    }

    private static List<FloatTensor> runAll(Denoiser d, List<DenoiseJob> jobs) {
        List<CompletableFuture<FloatTensor>> futures = new ArrayList<>();
        for (DenoiseJob j : jobs) {
            futures.add(d.submit(j, QUIET));
        }
        return futures.stream().map(CompletableFuture::join).toList();
    }

    @Test
    void mergedCallsGiveEachJobTheLatentsItGetsAloneBitForBit() {
        List<DenoiseJob> jobs = mixed();
        List<FloatTensor> alone = new ArrayList<>();
        try (Denoiser off = Denoiser.load(DemoModel.directory(), ExecutionOptions.CPU, TorchGenerator.Kernel.AVX2,
                BatchSettings.OFF)) {
            for (DenoiseJob j : jobs) {
                alone.add(off.denoise(j, QUIET));
            }
        }
        try (Denoiser on = Denoiser.load(DemoModel.directory(), ExecutionOptions.CPU, TorchGenerator.Kernel.AVX2,
                WINDOWED)) {
            assertTrue(on.unet().perRowTimestep(), "the demo UNet takes timestep [batch]");
            List<FloatTensor> batched = runAll(on, jobs);
            for (int i = 0; i < jobs.size(); i++) {
                assertArrayEquals(alone.get(i).data(), batched.get(i).data(), "job " + i + " differs when batched");
            }
            StepBatcher b = on.batcher().orElseThrow();
            long unetSteps = 8 + 8 + 8 + 5 + 8;
            assertTrue(b.calls() < unetSteps, "merged: " + b.calls() + " calls for " + unetSteps + " steps");
            // rows per step: 2 (guided, 1 image), 2 (unguided, 2 images), 2, 4 (guided, 2 images), 2
            assertEquals(2 * 8 + 2 * 8 + 2 * 8 + 4 * 5 + 2 * 8, b.rows());
        }
    }

    private static ModelDirectory tiny(String name) throws Exception {
        return ModelDirectory.open(Path.of(StepBatchingTest.class.getResource("/tiny/" + name).toURI()));
    }

    /** A denoiser over a tiny graph out_sample = sample * t with the demo model's scheduler settings. */
    private static Denoiser tinyDenoiser(String graph, BatchSettings batching) throws Exception {
        UNet unet = UNet.load(tiny(graph), ExecutionOptions.CPU);
        SchedulerConfig config = SchedulerConfig.parse(DemoModel.directory().json("scheduler/scheduler_config.json"));
        return new Denoiser(graph, unet, config, new ModelGeometry(8, 8, 16, 16), Optional.empty(),
                TorchGenerator.Kernel.AVX2, batching);
    }

    private static DenoiseJob tinyJob(int steps, long seed) {
        return new DenoiseJob(FloatTensor.zeros(1, 77, 8), null, 16, 16, steps, 1f, "ddim", new long[] {seed}, 0, 0f,
                null, 0, 0);
    }

    @Test
    void aPerRowTimestepMergesJobsAtDifferentSteps() throws Exception {
        // 3 and 7 steps of DDIM never share a timestep after the first: per-row timesteps merge them anyway
        List<DenoiseJob> jobs = List.of(tinyJob(3, 1), tinyJob(7, 2), tinyJob(5, 3));
        List<FloatTensor> alone = new ArrayList<>();
        try (Denoiser off = tinyDenoiser("unet-int64-timestep", BatchSettings.OFF)) {
            for (DenoiseJob j : jobs) {
                alone.add(off.denoise(j, QUIET));
            }
        }
        try (Denoiser on = tinyDenoiser("unet-int64-timestep", WINDOWED)) {
            List<FloatTensor> batched = runAll(on, jobs);
            for (int i = 0; i < jobs.size(); i++) {
                assertArrayEquals(alone.get(i).data(), batched.get(i).data(), "job " + i);
            }
            assertEquals(7, on.batcher().orElseThrow().calls(), "one call per step of the longest job");
            assertEquals(3 + 7 + 5, on.batcher().orElseThrow().rows());
        }
    }

    @Test
    void aRankZeroTimestepMergesOnlyRowsAtTheSameTimestep() throws Exception {
        // the same schedule: three jobs in lockstep share every call
        try (Denoiser on = tinyDenoiser("unet-scalar-timestep", WINDOWED)) {
            assertTrue(!on.unet().perRowTimestep());
            List<FloatTensor> same = runAll(on, List.of(tinyJob(4, 1), tinyJob(4, 2), tinyJob(4, 3)));
            assertEquals(4, on.batcher().orElseThrow().calls(), "three 4-step jobs in lockstep: 4 calls");
            assertEquals(3, same.size());
        }
        List<DenoiseJob> jobs = List.of(tinyJob(3, 1), tinyJob(7, 2));
        List<FloatTensor> alone = new ArrayList<>();
        try (Denoiser off = tinyDenoiser("unet-scalar-timestep", BatchSettings.OFF)) {
            for (DenoiseJob j : jobs) {
                alone.add(off.denoise(j, QUIET));
            }
        }
        try (Denoiser on = tinyDenoiser("unet-scalar-timestep", WINDOWED)) {
            List<FloatTensor> batched = runAll(on, jobs);
            for (int i = 0; i < jobs.size(); i++) {
                assertArrayEquals(alone.get(i).data(), batched.get(i).data(), "job " + i);
            }
            // DDIM 3 steps (667, 334, 1) and 7 steps (853, 711, ..., 1) meet at no step: no call is shared
            assertEquals(3 + 7, on.batcher().orElseThrow().calls());
        }
    }

    @Test
    void cancellingOneJobStopsOnlyThatJob() throws Exception {
        try (Denoiser on = tinyDenoiser("unet-int64-timestep", WINDOWED)) {
            AtomicBoolean stop = new AtomicBoolean();
            AtomicInteger stepsOfCancelled = new AtomicInteger();
            StepListener cancellable = new StepListener() {
                @Override
                public void onStep(int step, int total, double timestep, List<byte[]> previews) {
                    stepsOfCancelled.set(step);
                    if (step == 2) {
                        stop.set(true);
                    }
                }

                @Override
                public boolean cancelled() {
                    return stop.get();
                }
            };
            CompletableFuture<FloatTensor> cancelled = on.submit(tinyJob(20, 1), cancellable);
            CompletableFuture<FloatTensor> other = on.submit(tinyJob(20, 2), QUIET);
            CompletionException e = assertThrows(CompletionException.class, cancelled::join);
            assertTrue(e.getCause() instanceof JobCancelledException, String.valueOf(e.getCause()));
            assertEquals(2, stepsOfCancelled.get(), "stopped before its next step");
            assertArrayEquals(new long[] {1, 4, 2, 2}, other.join().shape());
        }
    }
}
