package org.sdserve.denoise.scheduler;

import org.sdserve.common.tensor.FloatTensor;
import org.sdserve.common.noise.NoiseSource;

/**
 * Euler's method on the probability-flow ODE (Karras et al., 2022, Algorithm 2 without churn), following
 * diffusers' EulerDiscreteScheduler: x0 = x - sigma * eps; x_next = x + (x - x0) / sigma * (sigma_next - sigma).
 * The model input is x / sqrt(sigma^2 + 1).
 */
public final class EulerDiscreteScheduler implements Scheduler {
    private final SchedulerConfig config;
    private final SigmaSchedule s;

    public EulerDiscreteScheduler(SchedulerConfig config, int steps, boolean karras) {
        this.config = config;
        this.s = SigmaSchedule.euler(config, steps, karras);
    }

    @Override
    public int steps() {
        return s.timesteps().length;
    }

    @Override
    public double timestep(int index) {
        return s.timesteps()[index];
    }

    /** sigma at step index (index == steps() gives the final 0). */
    public double sigma(int index) {
        return s.sigmas()[index];
    }

    @Override
    public float initNoiseSigma() {
        return s.initNoiseSigma();
    }

    @Override
    public FloatTensor scaleModelInput(FloatTensor sample, int index) {
        return scaled(sample, s.sigmas()[index]);
    }

    static FloatTensor scaled(FloatTensor sample, double sigma) {
        float k = (float) Math.sqrt(sigma * sigma + 1);
        float[] x = sample.data();
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = x[i] / k;
        }
        return new FloatTensor(sample.shape(), out);
    }

    /** x + n sigma (the sigma of step {@code index}). */
    @Override
    public FloatTensor addNoise(FloatTensor original, FloatTensor noise, int index) {
        return AlphaPrediction.combine(original, 1, noise, s.sigmas()[index]);
    }

    @Override
    public StepResult step(FloatTensor modelOutput, int index, FloatTensor sample, NoiseSource noise) {
        double sigma = s.sigmas()[index];
        double dt = s.sigmas()[index + 1] - sigma;
        float[] m = modelOutput.data();
        float[] x = sample.data();
        float[] x0 = new float[x.length];
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            double p = SigmaSchedule.predOriginal(config.predictionType(), x[i], m[i], sigma);
            x0[i] = (float) p;
            out[i] = (float) (x[i] + (x[i] - p) / sigma * dt);
        }
        return new StepResult(new FloatTensor(sample.shape(), out), new FloatTensor(sample.shape(), x0));
    }
}
