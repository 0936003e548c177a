package org.sdserve.denoise.scheduler;

/** Timestep selection shared by the schedulers, following diffusers' set_timesteps for each spacing. */
final class Spacing {
    private Spacing() {
    }

    /**
     * DDIM / Euler style: {@code steps} timesteps, descending.
     * leading: (arange(steps) * (T // steps)).round()[::-1] + steps_offset;
     * trailing: round(arange(T, 0, -T/steps)) - 1; linspace: linspace(0, T-1, steps)[::-1] (not rounded:
     * Euler keeps the fractions, DDIM rounds them).
     */
    static double[] timesteps(SchedulerConfig c, int steps, boolean roundLinspace) {
        int t = c.numTrainTimesteps();
        double[] ts = new double[steps];
        switch (c.timestepSpacing()) {
            case "leading" -> {
                int ratio = t / steps;
                for (int i = 0; i < steps; i++) {
                    ts[i] = (double) (steps - 1 - i) * ratio + c.stepsOffset();
                }
            }
            case "trailing" -> {
                double ratio = (double) t / steps;
                for (int i = 0; i < steps; i++) {
                    ts[i] = Math.rint(t - i * ratio) - 1;
                }
            }
            case "linspace" -> {
                for (int i = 0; i < steps; i++) {
                    double v = steps == 1 ? 0 : (double) (t - 1) * (steps - 1 - i) / (steps - 1);
                    ts[i] = roundLinspace ? Math.rint(v) : v;
                }
            }
            default -> throw new IllegalStateException(c.timestepSpacing());
        }
        return ts;
    }

    /** np.interp(t, arange(len(sigmas)), sigmas): linear interpolation of the training sigmas. */
    static double interp(float[] sigmas, double t) {
        if (t <= 0) {
            return sigmas[0];
        }
        if (t >= sigmas.length - 1) {
            return sigmas[sigmas.length - 1];
        }
        int lo = (int) Math.floor(t);
        double w = t - lo;
        return sigmas[lo] * (1 - w) + sigmas[lo + 1] * w;
    }

    /** Karras et al. (2022) eq. 5 with rho = 7, from sigmaMax down to sigmaMin over n values. */
    static double[] karras(double sigmaMin, double sigmaMax, int n) {
        double rho = 7.0;
        double minInv = Math.pow(sigmaMin, 1 / rho);
        double maxInv = Math.pow(sigmaMax, 1 / rho);
        double[] s = new double[n];
        for (int i = 0; i < n; i++) {
            double ramp = n == 1 ? 0 : (double) i / (n - 1);
            s[i] = Math.pow(maxInv + ramp * (minInv - maxInv), rho);
        }
        return s;
    }

    /** diffusers' _sigma_to_t: the fractional training timestep whose sigma is {@code sigma} (log-linear). */
    static double sigmaToT(double sigma, float[] trainSigmas) {
        double logSigma = Math.log(Math.max(sigma, 1e-10));
        int n = trainSigmas.length;
        int low = 0;
        for (int i = 0; i < n; i++) {
            if (logSigma - Math.log(trainSigmas[i]) >= 0) {
                low = i;
            }
        }
        low = Math.min(low, n - 2);
        double lo = Math.log(trainSigmas[low]);
        double hi = Math.log(trainSigmas[low + 1]);
        double w = Math.max(0, Math.min(1, (lo - logSigma) / (lo - hi)));
        return (1 - w) * low + w * (low + 1);
    }
}
