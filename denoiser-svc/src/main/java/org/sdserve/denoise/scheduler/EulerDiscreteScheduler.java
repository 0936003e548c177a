package org.sdserve.denoise.scheduler;

import org.sdserve.common.tensor.FloatTensor;
import org.sdserve.common.noise.NoiseSource;

/**
 * Euler's method on the probability-flow ODE (Karras et al., 2022, Algorithm 2 without churn), following
 * diffusers' EulerDiscreteScheduler: x0 = x - sigma * eps; x_next = x + (x - x0) / sigma * (sigma_next - sigma).
 * The model input is x / sqrt(sigma^2 + 1).
 */
public final class EulerDiscreteScheduler extends SigmaScheduler {

    public EulerDiscreteScheduler(SchedulerConfig config, int steps, boolean karras) {
        super(config, SigmaSchedule.euler(config, steps, karras));
    }

    /** One step in float32, in diffusers' order of operations (its full-loop values depend on that rounding). */
    @Override
    public StepResult step(FloatTensor modelOutput, int index, FloatTensor sample, NoiseSource noise) {
        float sigma = (float) sigmas[index];
        float dt = (float) sigmas[index + 1] - sigma;
        float[] m = modelOutput.data();
        float[] x = sample.data();
        float[] x0 = new float[x.length];
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            float p = SigmaSchedule.predOriginal(config.predictionType(), x[i], m[i], sigma);
            float derivative = (x[i] - p) / sigma;
            x0[i] = p;
            out[i] = x[i] + derivative * dt;
        }
        return new StepResult(new FloatTensor(sample.shape(), out), new FloatTensor(sample.shape(), x0));
    }
}
