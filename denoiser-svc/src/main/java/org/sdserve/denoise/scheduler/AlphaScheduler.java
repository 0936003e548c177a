package org.sdserve.denoise.scheduler;

import org.sdserve.common.tensor.FloatTensor;

/**
 * What the schedulers that step in alpha space on integer timesteps share (DDIM, DDPM, LCM): the training schedule,
 * the run's timesteps (one UNet call each), and the forward process sqrt(a_t) x + sqrt(1 - a_t) n.
 */
abstract class AlphaScheduler implements Scheduler {
    protected final SchedulerConfig config;
    protected final NoiseSchedule schedule;
    protected final int[] timesteps;

    AlphaScheduler(SchedulerConfig config, int[] timesteps) {
        this.config = config;
        this.schedule = new NoiseSchedule(config);
        this.timesteps = timesteps;
    }

    /** The spacing's timesteps (diffusers' set_timesteps, rounded to integers), descending. */
    static int[] spaced(SchedulerConfig config, int steps) {
        double[] ts = Spacing.timesteps(config, steps, true);
        int[] out = new int[steps];
        for (int i = 0; i < steps; i++) {
            out[i] = (int) ts[i];
        }
        return out;
    }

    @Override
    public final int steps() {
        return timesteps.length;
    }

    @Override
    public final double timestep(int index) {
        return timesteps[index];
    }

    @Override
    public final FloatTensor addNoise(FloatTensor original, FloatTensor noise, int index) {
        return AlphaPrediction.noised(original, noise, schedule.alphaCumprod(timesteps[index]));
    }
}
