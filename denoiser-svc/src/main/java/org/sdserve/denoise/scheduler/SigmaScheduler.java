package org.sdserve.denoise.scheduler;

import org.sdserve.common.tensor.FloatTensor;

/**
 * What the schedulers that step in sigma space share (Euler, Euler ancestral, LMS, Heun): the run's timesteps and
 * sigmas (one more sigma than steps, the last the final one), the model input x / sqrt(sigma^2 + 1), and the forward
 * process x + n sigma.
 */
abstract class SigmaScheduler implements Scheduler {
    protected final SchedulerConfig config;
    protected final double[] timesteps;
    protected final double[] sigmas;
    private final float initNoiseSigma;

    SigmaScheduler(SchedulerConfig config, double[] timesteps, double[] sigmas, float initNoiseSigma) {
        this.config = config;
        this.timesteps = timesteps;
        this.sigmas = sigmas;
        this.initNoiseSigma = initNoiseSigma;
    }

    SigmaScheduler(SchedulerConfig config, SigmaSchedule s) {
        this(config, s.timesteps(), s.sigmas(), s.initNoiseSigma());
    }

    @Override
    public final int steps() {
        return timesteps.length;
    }

    @Override
    public final double timestep(int index) {
        return timesteps[index];
    }

    /** sigma at step index (index == steps() gives the final sigma). */
    public final double sigma(int index) {
        return sigmas[index];
    }

    @Override
    public final float initNoiseSigma() {
        return initNoiseSigma;
    }

    /** x / (sigma^2 + 1) ** 0.5 in float32, as diffusers computes it. */
    @Override
    public final FloatTensor scaleModelInput(FloatTensor sample, int index) {
        float s = (float) sigmas[index];
        float k = (float) Math.sqrt(s * s + 1f);
        float[] x = sample.data();
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = x[i] / k;
        }
        return new FloatTensor(sample.shape(), out);
    }

    /** x + n * sigma in float32, as diffusers computes it. */
    @Override
    public final FloatTensor addNoise(FloatTensor original, FloatTensor noise, int index) {
        float s = (float) sigmas[index];
        float[] x = original.data();
        float[] n = noise.data();
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = x[i] + n[i] * s;
        }
        return new FloatTensor(original.shape(), out);
    }
}
