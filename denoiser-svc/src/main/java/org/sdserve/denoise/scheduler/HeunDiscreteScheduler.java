package org.sdserve.denoise.scheduler;

import org.sdserve.common.noise.NoiseSource;
import org.sdserve.common.tensor.FloatTensor;

/**
 * Heun's second-order method (Karras et al., 2022, Algorithm 1), following diffusers' HeunDiscreteScheduler: each
 * inference step but the last is two UNet calls, an Euler step to sigma_next and a correction with the average of
 * the two slopes, so a run of N steps makes 2N - 1 calls (steps() counts calls). Timesteps and sigmas are the
 * Euler ones with every inner entry doubled.
 */
public final class HeunDiscreteScheduler extends SigmaScheduler {
    private float[] prevDerivative;
    private float[] firstSample;
    private float dt;

    public HeunDiscreteScheduler(SchedulerConfig config, int steps, boolean karras) {
        this(config, SigmaSchedule.euler(config, steps, karras));
    }

    private HeunDiscreteScheduler(SchedulerConfig config, SigmaSchedule s) {
        super(config, doubled(s.timesteps(), s.timesteps().length), doubled(s.sigmas(), s.sigmas().length - 1),
                s.initNoiseSigma());
    }

    @Override
    public int order() {
        return 2;
    }

    /** v[0], then v[1..end) each twice, then the rest once: diffusers' repeat_interleave of the inner entries. */
    private static double[] doubled(double[] v, int end) {
        double[] out = new double[v.length + end - 1];
        int k = 0;
        out[k++] = v[0];
        for (int i = 1; i < v.length; i++) {
            out[k++] = v[i];
            if (i < end) {
                out[k++] = v[i];
            }
        }
        return out;
    }

    /** Between the two stages of a step: diffusers' prev_derivative and sample (dt follows from the index). */
    @Override
    public History history() {
        return History.of("prev_derivative", prevDerivative, "sample", firstSample);
    }

    @Override
    public void restore(History h) {
        prevDerivative = h.array("prev_derivative");
        firstSample = h.array("sample");
    }

    /** One stage in float32, in diffusers' order of operations. */
    @Override
    public StepResult step(FloatTensor modelOutput, int index, FloatTensor sample, NoiseSource noise) {
        boolean first = firstSample == null;
        float sigma = (float) (first ? sigmas[index] : sigmas[index - 1]);
        float sigmaNext = (float) (first ? sigmas[index + 1] : sigmas[index]);
        float at = first ? sigma : sigmaNext; // the second stage predicts x0 at sigma_next
        float[] m = modelOutput.data();
        float[] x = sample.data();
        float[] x0 = new float[x.length];
        float[] out = new float[x.length];
        if (first) {
            float[] d = new float[x.length];
            dt = sigmaNext - sigma;
            for (int i = 0; i < x.length; i++) {
                float p = SigmaSchedule.predOriginal(config.predictionType(), x[i], m[i], at);
                x0[i] = p;
                d[i] = (x[i] - p) / sigma;
                out[i] = x[i] + d[i] * dt;
            }
            prevDerivative = d;
            firstSample = x;
        } else {
            for (int i = 0; i < x.length; i++) {
                float p = SigmaSchedule.predOriginal(config.predictionType(), x[i], m[i], at);
                x0[i] = p;
                float d = (prevDerivative[i] + (x[i] - p) / sigmaNext) / 2;
                out[i] = firstSample[i] + d * dt;
            }
            prevDerivative = null;
            firstSample = null;
        }
        return new StepResult(new FloatTensor(sample.shape(), out), new FloatTensor(sample.shape(), x0));
    }
}
