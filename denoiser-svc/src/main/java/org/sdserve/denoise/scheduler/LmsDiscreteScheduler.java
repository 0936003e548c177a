package org.sdserve.denoise.scheduler;

import java.util.ArrayList;
import java.util.List;
import org.sdserve.common.noise.NoiseSource;
import org.sdserve.common.tensor.FloatTensor;

/**
 * Linear multistep on the probability-flow ODE in sigma (Karras et al., 2022; k-diffusion's sample_lms), following
 * diffusers' LMSDiscreteScheduler with order 4: x_next = x + sum_k c_k d_{i-k}, d = (x - x0) / sigma, c_k the
 * integral over [sigma_i, sigma_{i+1}] of the Lagrange basis polynomial of node sigma_{i-k}. The integrand is a
 * polynomial of degree <= 3, integrated exactly here (diffusers uses scipy's quad, exact for it too).
 */
public final class LmsDiscreteScheduler extends SigmaScheduler {
    private static final int ORDER = 4;
    private static final double[] GL_X = {-0.8611363115940526, -0.3399810435848563, 0.3399810435848563,
        0.8611363115940526};
    private static final double[] GL_W = {0.3478548451374538, 0.6521451548625461, 0.6521451548625461,
        0.3478548451374538};
    private final List<float[]> derivatives = new ArrayList<>();

    public LmsDiscreteScheduler(SchedulerConfig config, int steps, boolean karras) {
        super(config, SigmaSchedule.euler(config, steps, karras));
    }

    /** Integral over [sigma_i, sigma_{i+1}] of prod_{j != k} (tau - sigma_{i-j}) / (sigma_{i-k} - sigma_{i-j}). */
    private double coefficient(int order, int i, int k) {
        double[] sig = sigmas;
        double a = sig[i];
        double b = sig[i + 1];
        double sum = 0;
        for (int q = 0; q < GL_X.length; q++) {
            double tau = (b - a) / 2 * GL_X[q] + (a + b) / 2;
            double prod = 1;
            for (int j = 0; j < order; j++) {
                if (j != k) {
                    prod *= (tau - sig[i - j]) / (sig[i - k] - sig[i - j]);
                }
            }
            sum += GL_W[q] * prod;
        }
        return sum * (b - a) / 2;
    }

    /** diffusers' derivatives: the last up to four slopes (x - x0) / sigma. */
    @Override
    public History history() {
        return History.of("derivatives", derivatives);
    }

    @Override
    public void restore(History h) {
        derivatives.clear();
        derivatives.addAll(h.list("derivatives"));
    }

    @Override
    public StepResult step(FloatTensor modelOutput, int index, FloatTensor sample, NoiseSource noise) {
        float sigma = (float) sigmas[index];
        float[] m = modelOutput.data();
        float[] x = sample.data();
        float[] x0 = new float[x.length];
        float[] d = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            float p = SigmaSchedule.predOriginal(config.predictionType(), x[i], m[i], sigma);
            x0[i] = p;
            d[i] = (x[i] - p) / sigma;
        }
        derivatives.add(d);
        if (derivatives.size() > ORDER) {
            derivatives.remove(0);
        }
        int order = Math.min(index + 1, ORDER);
        float[] c = new float[order]; // integrated in float64, applied in float32 as torch applies Python floats
        for (int k = 0; k < order; k++) {
            c[k] = (float) coefficient(order, index, k);
        }
        float[] out = new float[x.length];
        int newest = derivatives.size() - 1;
        int terms = Math.min(order, derivatives.size()); // diffusers zips coefficients with the derivatives it has
        for (int i = 0; i < x.length; i++) {
            float sum = c[0] * derivatives.get(newest)[i]; // diffusers: x + sum(c_k * d_k, newest first)
            for (int k = 1; k < terms; k++) {
                sum += c[k] * derivatives.get(newest - k)[i];
            }
            out[i] = x[i] + sum;
        }
        return new StepResult(new FloatTensor(sample.shape(), out), new FloatTensor(sample.shape(), x0));
    }
}
