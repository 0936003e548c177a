package org.sdserve.denoise.scheduler;

import org.sdserve.common.tensor.FloatTensor;
import org.sdserve.common.noise.NoiseSource;

/**
 * Ancestral Euler, following diffusers' EulerAncestralDiscreteScheduler: an Euler step down to
 * sigma_down, then fresh noise of scale sigma_up, where sigma_up = sqrt(sigma_next^2 (sigma^2 - sigma_next^2)
 * / sigma^2) and sigma_down = sqrt(sigma_next^2 - sigma_up^2). Noise is drawn at every step, per image.
 */
public final class EulerAncestralScheduler extends SigmaScheduler {

    public EulerAncestralScheduler(SchedulerConfig config, int steps) {
        super(config, SigmaSchedule.euler(config, steps, false));
    }

    @Override
    public boolean stochastic() {
        return true;
    }

    @Override
    public StepResult step(FloatTensor modelOutput, int index, FloatTensor sample, NoiseSource noise) {
        double from = sigmas[index];
        double to = sigmas[index + 1];
        double up = Math.sqrt(to * to * (from * from - to * to) / (from * from));
        double down = Math.sqrt(to * to - up * up);
        double dt = down - from;
        float[] m = modelOutput.data();
        float[] x = sample.data();
        float[] z = noise.randn(sample.shape()).data();
        float[] x0 = new float[x.length];
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            double p = SigmaSchedule.predOriginal(config.predictionType(), x[i], m[i], from);
            x0[i] = (float) p;
            float euler = (float) (x[i] + (x[i] - p) / from * dt);
            out[i] = (float) (euler + z[i] * up);
        }
        return new StepResult(new FloatTensor(sample.shape(), out), new FloatTensor(sample.shape(), x0));
    }
}
