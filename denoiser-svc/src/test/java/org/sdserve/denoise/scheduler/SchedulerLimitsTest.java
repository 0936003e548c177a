package org.sdserve.denoise.scheduler;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.common.noise.NoiseSource;
import org.sdserve.common.tensor.FloatTensor;
import org.sdserve.common.testing.DemoModel;

/**
 * Every scheduler at the edges of its step counts, on the demo model's config (SD 1.x's: 1000 training steps,
 * "leading" spacing, steps_offset 1): it runs its whole schedule, or refuses the count with a message; no other
 * exception (the fuzzing of issue 11 found pndm at 1 step and ddim, ddpm, pndm at 1000 failing inside).
 */
class SchedulerLimitsTest {
    private static final SchedulerConfig CONFIG = SchedulerConfig.parse(DemoModel.directory()
            .json("scheduler/scheduler_config.json"));

    private static void runWhole(String name, int steps) {
        Scheduler s = Schedulers.create(name, CONFIG, steps, 0f);
        FloatTensor x = new FloatTensor(new long[] {1, 4, 2, 2}, new float[16]);
        NoiseSource noise = new NoiseSource(new long[] {1});
        for (int i = 0; i < s.steps(); i++) {
            s.timestep(i);
            x = s.step(x, i, x, noise).prevSample(); // eps = x: any finite tensor exercises the indexing
        }
    }

    @Test
    void everySchedulerRunsOrRefusesEachStepCount() {
        for (String name : Schedulers.NAMES) {
            for (int steps : new int[] {1, 2, 50, 999, 1000}) {
                try {
                    runWhole(name, steps);
                } catch (InvalidRequestException refused) {
                    // a documented refusal is fine; any other exception fails the test
                }
            }
        }
    }

    @Test
    void theRefusalsSayTheLimit() {
        assertEquals("ddim: steps must be at most 999 for this model (num_train_timesteps 1000, steps_offset 1), "
                + "got 1000", assertThrows(InvalidRequestException.class, () -> runWhole("ddim", 1000)).getMessage());
        assertEquals("pndm: steps must be at least 2 (its PLMS warm-up), got 1",
                assertThrows(InvalidRequestException.class, () -> runWhole("pndm", 1)).getMessage());
        String unknown = assertThrows(InvalidRequestException.class,
                () -> Schedulers.create("x".repeat(5000), CONFIG, 10, 0f)).getMessage();
        assertTrue(unknown.length() < 400, unknown); // the input shown cut to 64 characters, then the fixed list of names
    }
}
