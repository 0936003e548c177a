package org.sdserve.denoise.scheduler;

/**
 * The training noise schedule: betas, and alphas_cumprod as diffusers computes them on CPU in float32
 * (betas as float32 linspace; the cumulative product accumulated in float64, each element rounded to float32).
 */
public final class NoiseSchedule {
    private final float[] alphasCumprod;

    public NoiseSchedule(SchedulerConfig c) {
        float[] betas = betas(c);
        alphasCumprod = new float[betas.length];
        double acc = 1.0;
        for (int i = 0; i < betas.length; i++) {
            acc *= (1.0f - betas[i]);
            alphasCumprod[i] = (float) acc;
        }
    }

    static float[] betas(SchedulerConfig c) {
        int n = c.numTrainTimesteps();
        if (c.trainedBetas() != null) {
            float[] b = new float[n];
            for (int i = 0; i < n; i++) {
                b[i] = (float) c.trainedBetas()[i];
            }
            return b;
        }
        return switch (c.betaSchedule()) {
            case "linear" -> linspace((float) c.betaStart(), (float) c.betaEnd(), n);
            case "scaled_linear" -> {
                float[] r = linspace((float) Math.sqrt(c.betaStart()), (float) Math.sqrt(c.betaEnd()), n);
                for (int i = 0; i < n; i++) {
                    r[i] = r[i] * r[i];
                }
                yield r;
            }
            case "squaredcos_cap_v2" -> {
                float[] r = new float[n];
                for (int i = 0; i < n; i++) {
                    double t1 = (double) i / n;
                    double t2 = (double) (i + 1) / n;
                    r[i] = (float) Math.min(1 - alphaBar(t2) / alphaBar(t1), 0.999);
                }
                yield r;
            }
            default -> throw new IllegalArgumentException(c.betaSchedule());
        };
    }

    private static double alphaBar(double t) {
        double c = Math.cos((t + 0.008) / 1.008 * Math.PI / 2);
        return c * c;
    }

    /** torch.linspace in float32: start + step*i for the first half, end - step*(n-1-i) for the second. */
    static float[] linspace(float start, float end, int n) {
        float[] r = new float[n];
        float step = (end - start) / (n - 1);
        int half = n / 2;
        for (int i = 0; i < n; i++) {
            r[i] = i < half ? start + step * i : end - step * (n - 1 - i);
        }
        return r;
    }

    public int size() {
        return alphasCumprod.length;
    }

    public float alphaCumprod(int t) {
        return alphasCumprod[t];
    }

    /** sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t), in float32 as diffusers' k-diffusion schedulers. */
    public float[] sigmas() {
        float[] s = new float[alphasCumprod.length];
        for (int i = 0; i < s.length; i++) {
            float a = alphasCumprod[i];
            s[i] = (float) Math.sqrt((1f - a) / a);
        }
        return s;
    }
}
