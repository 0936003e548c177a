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
        this(config, steps, false);
    }

    /**
     * @param karras on EulerDiscreteScheduler's Karras sigmas ("Euler a Karras"; diffusers' ancestral scheduler has
     *     no such option, so a config's use_karras_sigmas leaves euler_a as it is, as there)
     */
    public EulerAncestralScheduler(SchedulerConfig config, int steps, boolean karras) {
        super(config, SigmaSchedule.euler(config, steps, karras));
    }

    @Override
    public boolean stochastic() {
        return true;
    }

    /** One step in float32, in diffusers' order of operations. */
    @Override
    public StepResult step(FloatTensor modelOutput, int index, FloatTensor sample, NoiseSource noise) {
        float from = (float) sigmas[index];
        float to = (float) sigmas[index + 1];
        float up = (float) Math.sqrt(to * to * (from * from - to * to) / (from * from));
        float down = (float) Math.sqrt(to * to - up * up);
        float dt = down - from;
        float[] m = modelOutput.data();
        float[] x = sample.data();
        float[] z = noise.randn(sample.shape()).data();
        float[] x0 = new float[x.length];
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            float p = SigmaSchedule.predOriginal(config.predictionType(), x[i], m[i], from);
            float derivative = (x[i] - p) / from;
            x0[i] = p;
            float euler = x[i] + derivative * dt;
            out[i] = euler + z[i] * up;
        }
        return new StepResult(new FloatTensor(sample.shape(), out), new FloatTensor(sample.shape(), x0));
    }
}
