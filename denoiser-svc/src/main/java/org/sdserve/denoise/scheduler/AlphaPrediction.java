package org.sdserve.denoise.scheduler;

import org.sdserve.common.tensor.FloatTensor;

/**
 * The clean-sample estimate x0 of the alpha-space schedulers (DDIM, DDPM, LCM) from the model output at a timestep
 * with cumulative alpha a_t, by prediction_type: epsilon x0 = (x - sqrt(1 - a_t) e) / sqrt(a_t);
 * v_prediction x0 = sqrt(a_t) x - sqrt(1 - a_t) v; sample x0 = the output.
 */
final class AlphaPrediction {
    private AlphaPrediction() {
    }

    /** Forward process in alpha space: sqrt(a_t) x + sqrt(1 - a_t) n. */
    static FloatTensor noised(FloatTensor x, FloatTensor n, double alphaT) {
        return combine(x, Math.sqrt(alphaT), n, Math.sqrt(1 - alphaT));
    }

    /** a x + b n, element by element. */
    static FloatTensor combine(FloatTensor x, double a, FloatTensor n, double b) {
        float[] xs = x.data();
        float[] ns = n.data();
        float[] out = new float[xs.length];
        for (int i = 0; i < xs.length; i++) {
            out[i] = (float) (a * xs[i] + b * ns[i]);
        }
        return new FloatTensor(x.shape(), out);
    }

    /** x0 in float32 from sqrt(a_t) and sqrt(1 - a_t), as diffusers computes it on float32 tensors. */
    static float x0(String predictionType, float x, float out, float sqrtAlphaT, float sqrtBetaT) {
        return switch (predictionType) {
            case "epsilon" -> (x - sqrtBetaT * out) / sqrtAlphaT;
            case "v_prediction" -> sqrtAlphaT * x - sqrtBetaT * out;
            default -> out;
        };
    }

    static double x0(String predictionType, double x, double out, double alphaT) {
        return switch (predictionType) {
            case "epsilon" -> (x - Math.sqrt(1 - alphaT) * out) / Math.sqrt(alphaT);
            case "v_prediction" -> Math.sqrt(alphaT) * x - Math.sqrt(1 - alphaT) * out;
            default -> out;
        };
    }

    /**
     * diffusers' "clip or threshold predicted x_0": the config's dynamic thresholding when it sets one, else its
     * clip_sample clamp to [-range, range], else nothing. May return a new array.
     */
    static float[] thresholdOrClip(SchedulerConfig c, float[] x0, int batch) {
        if (c.thresholding() != null) {
            return c.thresholding().apply(x0, batch);
        }
        if (c.clipSample()) {
            float range = (float) c.clipSampleRange();
            for (int i = 0; i < x0.length; i++) {
                x0[i] = Math.max(-range, Math.min(range, x0[i]));
            }
        }
        return x0;
    }

    /** The same on float64 values, in place (thresholding on their float32 roundings, as torch holds them). */
    static void thresholdOrClip(SchedulerConfig c, double[] x0, int batch) {
        if (c.thresholding() != null) {
            float[] f = new float[x0.length];
            for (int i = 0; i < f.length; i++) {
                f[i] = (float) x0[i];
            }
            float[] t = c.thresholding().apply(f, batch);
            for (int i = 0; i < f.length; i++) {
                x0[i] = t[i];
            }
        } else if (c.clipSample()) {
            double range = c.clipSampleRange();
            for (int i = 0; i < x0.length; i++) {
                x0[i] = Math.max(-range, Math.min(range, x0[i]));
            }
        }
    }
}
