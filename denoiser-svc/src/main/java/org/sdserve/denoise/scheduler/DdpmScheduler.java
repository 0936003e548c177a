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

    /**
     * One step in float32 scalars, in diffusers' order of operations: beta_t = 1 - a_t / a_prev loses most of its
     * digits to cancellation near t = 0, and reproducing diffusers' values needs the same rounding there.
     */
    @Override
    public StepResult step(FloatTensor modelOutput, int index, FloatTensor sample, NoiseSource noise) {
        int t = timesteps[index];
        int prev = index + 1 < timesteps.length ? timesteps[index + 1] : -1;
        float aT = schedule.alphaCumprod(t);
        float aPrev = prev >= 0 ? schedule.alphaCumprod(prev) : 1f;
        float bT = 1f - aT;
        float bPrev = 1f - aPrev;
        float curAlpha = aT / aPrev;
        float curBeta = 1f - curAlpha;
        float cX0 = sqrt(aPrev) * curBeta / bT;
        float cX = sqrt(curAlpha) * bPrev / bT;
        float std = sqrt(Math.max(bPrev / bT * curBeta, 1e-20f));
        float sqrtAT = sqrt(aT);
        float sqrtBT = sqrt(bT);
        float[] z = t > 0 ? noise.randn(sample.shape()).data() : null;
        float[] m = modelOutput.data();
        float[] x = sample.data();
        float[] x0 = new float[x.length];
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            x0[i] = AlphaPrediction.x0(config.predictionType(), x[i], m[i], sqrtAT, sqrtBT);
        }
        x0 = AlphaPrediction.thresholdOrClip(config, x0, sample.dim(0));
        for (int i = 0; i < x.length; i++) {
            float p = x0[i];
            float mean = cX0 * p + cX * x[i];
            out[i] = z == null ? mean : mean + std * z[i];
        }
        return new StepResult(new FloatTensor(sample.shape(), out), new FloatTensor(sample.shape(), x0));
    }

    /** torch's float32 x ** 0.5: the correctly rounded square root. */
    private static float sqrt(float v) {
        return (float) Math.sqrt(v);
    }
}
