package org.sdserve.denoise.scheduler;

import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.common.noise.NoiseSource;
import org.sdserve.common.tensor.FloatTensor;

/**
 * Latent consistency sampling (Luo et al., arXiv:2310.04378), following diffusers' LCMScheduler: timesteps picked
 * from the 50-step consistency-distillation schedule (k = T/50: 999, 979, ...), each step the boundary-condition
 * denoised estimate c_out x0 + c_skip x (c_skip = 0.25 / ((10 t)^2 + 0.25), c_out = 10 t / sqrt((10 t)^2 + 0.25)),
 * re-noised to the next timestep with fresh noise except at the last step. Meant for LCM-distilled UNets.
 */
public final class LcmScheduler extends AlphaScheduler {
    private static final int ORIGINAL_STEPS = 50;
    private static final double TIMESTEP_SCALING = 10.0;
    private final float finalAlphaCumprod;

    public LcmScheduler(SchedulerConfig config, int steps) {
        super(config, distilledTimesteps(config, steps, "lcm"));
        this.finalAlphaCumprod = config.setAlphaToOne() ? 1f : schedule.alphaCumprod(0);
    }

    /** The consistency-distillation schedule diffusers' LCMScheduler and TCDScheduler share. */
    static int[] distilledTimesteps(SchedulerConfig config, int steps, String name) {
        InvalidRequestException.require(steps <= ORIGINAL_STEPS, "%s: steps must be at most %d, got %d", name,
                ORIGINAL_STEPS, steps);
        int k = config.numTrainTimesteps() / ORIGINAL_STEPS;
        int[] ts = new int[steps];
        for (int i = 0; i < steps; i++) {
            int idx = (int) Math.floor((double) i * ORIGINAL_STEPS / steps); // floor(linspace(0, 50, n, endpoint=False))
            ts[i] = (ORIGINAL_STEPS - idx) * k - 1; // origin reversed: 999, 979, ...
        }
        return ts;
    }

    @Override
    public boolean stochastic() {
        return true;
    }

    @Override
    public StepResult step(FloatTensor modelOutput, int index, FloatTensor sample, NoiseSource noise) {
        int t = timesteps[index];
        boolean last = index == timesteps.length - 1;
        int prev = last ? t : timesteps[index + 1];
        double aT = schedule.alphaCumprod(t);
        double aP = prev >= 0 ? schedule.alphaCumprod(prev) : finalAlphaCumprod;
        double scaled = t * TIMESTEP_SCALING;
        double cSkip = 0.25 / (scaled * scaled + 0.25);
        double cOut = scaled / Math.sqrt(scaled * scaled + 0.25);
        float[] z = last ? null : noise.randn(sample.shape()).data();
        float[] m = modelOutput.data();
        float[] x = sample.data();
        float[] den = new float[x.length];
        float[] out = new float[x.length];
        double[] x0 = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            x0[i] = AlphaPrediction.x0(config.predictionType(), x[i], m[i], aT);
        }
        AlphaPrediction.thresholdOrClip(config, x0, sample.dim(0));
        for (int i = 0; i < x.length; i++) {
            double p = x0[i];
            den[i] = (float) (cOut * p + cSkip * x[i]);
            out[i] = last ? den[i] : (float) (Math.sqrt(aP) * den[i] + Math.sqrt(1 - aP) * z[i]);
        }
        return new StepResult(new FloatTensor(sample.shape(), out), new FloatTensor(sample.shape(), den));
    }
}
