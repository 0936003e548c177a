package org.sdserve.denoise.scheduler;

/**
 * The training noise schedule: betas, and alphas_cumprod as diffusers computes them on CPU in float32, bit for bit
 * (betas from torch's float32 linspace as its AVX2 kernel computes it; the cumulative product accumulated in
 * float64, as torch's CPU cumprod does, each element rounded to float32).
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

    /** torch.linspace in float32 as its CPU kernel computes it on x86-64 with AVX2 (torch's default there). */
    static float[] linspace(float start, float end, int n) {
        return linspace(start, end, n, LinspaceKernel.AVX2);
    }

    /**
     * The CPU kernels of torch.linspace (ATen's RangeFactoriesKernel.cpp, linspace_kernel): {@code lanes} floats
     * a vector, and whether the compiler fused the vector's base into one multiply-add (the AVX kernels are built
     * with FMA). Their results differ in the last bits; each is reproduced exactly (NoiseScheduleTest, goldens
     * from torch 1.13 under each ATEN_CPU_CAPABILITY).
     */
    enum LinspaceKernel {
        DEFAULT(8, false), AVX2(8, true), AVX512(16, true);

        final int lanes;
        final boolean fusedBase;

        LinspaceKernel(int lanes, boolean fusedBase) {
            this.lanes = lanes;
            this.fusedBase = fusedBase;
        }
    }

    /**
     * The kernel's loop: step = (end - start) / (n - 1); element i is start + step * i in the first half and
     * end - step * (n - 1 - i) in the second, but computed a vector at a time (two vectors an iteration, while two
     * fit): each vector's first element by that rule (the half chosen by the first element's index, so a vector
     * that straddles the middle continues the first half's rule), its others as base + j * step (Vectorized::arange);
     * the last n mod (2 lanes) elements one at a time by the rule.
     */
    static float[] linspace(float start, float end, int n, LinspaceKernel k) {
        float[] r = new float[n];
        if (n == 1) {
            r[0] = start;
            return r;
        }
        float step = (end - start) / (n - 1);
        int i = 0;
        for (; i <= n - 2 * k.lanes; i += 2 * k.lanes) {
            for (int v = i; v < i + 2 * k.lanes; v += k.lanes) {
                float base = element(start, end, step, n, v, k.fusedBase);
                for (int j = 0; j < k.lanes; j++) {
                    r[v + j] = base + j * step;
                }
            }
        }
        for (; i < n; i++) {
            r[i] = element(start, end, step, n, i, k.fusedBase);
        }
        return r;
    }

    private static float element(float start, float end, float step, int n, int i, boolean fused) {
        if (i < n / 2) {
            return fused ? Math.fma(step, (float) i, start) : start + step * i;
        }
        return fused ? Math.fma(-step, (float) (n - 1 - i), end) : end - step * (n - 1 - i);
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
