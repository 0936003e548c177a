package org.sdserve.denoise.scheduler;

import org.sdserve.common.noise.NoiseSource;
import org.sdserve.common.tensor.FloatTensor;

/**
 * DDPM ancestral sampling (Ho et al., arXiv:2006.11239, eq. 7), following diffusers' DDPMScheduler with
 * variance_type "fixed_small": mean = sqrt(a_prev) beta_t / (1 - a_t) x0 + sqrt(alpha_t) (1 - a_prev) / (1 - a_t) x_t,
 * variance = (1 - a_prev) / (1 - a_t) beta_t (at least 1e-20), noise added for t > 0; beta_t = 1 - a_t / a_prev
 * between consecutive timesteps of the run.
 */
public final class DdpmScheduler extends AlphaScheduler {

    public DdpmScheduler(SchedulerConfig config, int steps) {
        super(config, spaced(config, steps));
    }

    @Override
    public boolean stochastic() {
        return true;
    }

    @Override
    public StepResult step(FloatTensor modelOutput, int index, FloatTensor sample, NoiseSource noise) {
        int t = timesteps[index];
        int prev = index + 1 < timesteps.length ? timesteps[index + 1] : -1;
        double aT = schedule.alphaCumprod(t);
        double aPrev = prev >= 0 ? schedule.alphaCumprod(prev) : 1.0;
        double bT = 1 - aT;
        double bPrev = 1 - aPrev;
        double curAlpha = aT / aPrev;
        double curBeta = 1 - curAlpha;
        double cX0 = Math.sqrt(aPrev) * curBeta / bT;
        double cX = Math.sqrt(curAlpha) * bPrev / bT;
        double std = Math.sqrt(Math.max(bPrev / bT * curBeta, 1e-20));
        float[] z = t > 0 ? noise.randn(sample.shape()).data() : null;
        float[] m = modelOutput.data();
        float[] x = sample.data();
        float[] x0 = new float[x.length];
        float[] out = new float[x.length];
        double range = config.clipSampleRange();
        for (int i = 0; i < x.length; i++) {
            double p = AlphaPrediction.x0(config.predictionType(), x[i], m[i], aT);
            if (config.clipSample()) {
                p = Math.max(-range, Math.min(range, p));
            }
            x0[i] = (float) p;
            float mean = (float) (cX0 * p + cX * x[i]);
            out[i] = z == null ? mean : (float) (mean + std * z[i]);
        }
        return new StepResult(new FloatTensor(sample.shape(), out), new FloatTensor(sample.shape(), x0));
    }
}
