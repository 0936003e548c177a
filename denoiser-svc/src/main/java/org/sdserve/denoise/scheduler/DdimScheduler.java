package org.sdserve.denoise.scheduler;

import org.sdserve.common.tensor.FloatTensor;
import org.sdserve.common.noise.NoiseSource;

/**
 * DDIM (Song et al., arXiv:2010.02502, eq. 12), following diffusers' DDIMScheduler.step:
 * x0 = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t); x_prev = sqrt(a_prev) x0 + sqrt(1 - a_prev - s^2) eps + s z,
 * s = eta * sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)). eta = 0 is deterministic.
 */
public final class DdimScheduler extends AlphaScheduler {
    private final float eta;
    private final float finalAlphaCumprod;

    public DdimScheduler(SchedulerConfig config, int steps, float eta) {
        super(config, spaced(config, steps));
        this.eta = eta;
        this.finalAlphaCumprod = config.setAlphaToOne() ? 1f : schedule.alphaCumprod(0);
    }

    @Override
    public boolean stochastic() {
        return eta > 0;
    }

    @Override
    public StepResult step(FloatTensor modelOutput, int index, FloatTensor sample, NoiseSource noise) {
        int t = timesteps[index];
        int prev = t - config.numTrainTimesteps() / timesteps.length;
        double aT = schedule.alphaCumprod(t);
        double aPrev = prev >= 0 ? schedule.alphaCumprod(prev) : finalAlphaCumprod;
        double bT = 1 - aT;
        double variance = (1 - aPrev) / bT * (1 - aT / aPrev);
        double std = eta * Math.sqrt(variance);
        float[] m = modelOutput.data();
        float[] x = sample.data();
        float[] x0 = new float[x.length];
        float[] out = new float[x.length];
        float[] z = stochastic() ? noise.randn(sample.shape()).data() : null;
        double[] predX0s = new double[x.length];
        double[] epss = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            double predX0 = AlphaPrediction.x0(config.predictionType(), x[i], m[i], aT);
            predX0s[i] = predX0;
            epss[i] = switch (config.predictionType()) {
                case "epsilon" -> m[i];
                case "sample" -> (x[i] - Math.sqrt(aT) * predX0) / Math.sqrt(bT);
                default -> Math.sqrt(aT) * m[i] + Math.sqrt(bT) * x[i]; // v_prediction
            };
        }
        // x0 thresholded, else clipped; eps is kept (use_clipped_model_output=False)
        AlphaPrediction.thresholdOrClip(config, predX0s, sample.dim(0));
        for (int i = 0; i < x.length; i++) {
            double predX0 = predX0s[i];
            double eps = epss[i];
            double prevSample = Math.sqrt(aPrev) * predX0 + Math.sqrt(1 - aPrev - std * std) * eps;
            if (z != null) {
                prevSample += std * z[i];
            }
            x0[i] = (float) predX0;
            out[i] = (float) prevSample;
        }
        return new StepResult(new FloatTensor(sample.shape(), out), new FloatTensor(sample.shape(), x0));
    }
}
