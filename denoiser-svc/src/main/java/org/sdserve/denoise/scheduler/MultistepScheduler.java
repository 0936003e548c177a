package org.sdserve.denoise.scheduler;

import org.sdserve.common.tensor.FloatTensor;

/**
 * What the multistep solvers in the variance-preserving sigma parameterisation share (DPM-Solver++, UniPC, DEIS):
 * their integer timesteps and sigmas (one more sigma than steps, the final one), alpha_t = 1 / sqrt(sigma^2 + 1),
 * sigma_t = sigma alpha_t, lambda = log(alpha_t / sigma_t), the model output as a data prediction x0, and the
 * forward process alpha_t x + sigma_t n.
 */
abstract class MultistepScheduler implements Scheduler {
    protected final SchedulerConfig config;
    protected final int[] timesteps;
    protected final double[] sigmas;

    MultistepScheduler(SchedulerConfig config, Timeline timeline) {
        this.config = config;
        this.timesteps = timeline.timesteps();
        this.sigmas = timeline.sigmas();
    }

    /**
     * The multistep solvers' set_timesteps (DPM-Solver++, DEIS): integer timesteps of steps + 1 spaced points but
     * the last, sigmas interpolated there (Karras-spaced or Lu's log-uniform instead when configured, their
     * timesteps rounded), then the final sigma: the smallest training sigma, or 0.
     */
    record Timeline(int[] timesteps, double[] sigmas) {
        static Timeline of(SchedulerConfig config, int steps, boolean karras, boolean finalSigmaMin) {
            float[] train = new NoiseSchedule(config).sigmas();
            int t = config.numTrainTimesteps();
            double[] ts = new double[steps];
            switch (config.timestepSpacing()) {
                case "linspace" -> {
                    for (int i = 0; i < steps; i++) {
                        ts[i] = Math.rint((double) (t - 1) * (steps - i) / steps);
                    }
                }
                case "leading" -> {
                    int ratio = t / (steps + 1);
                    for (int i = 0; i < steps; i++) {
                        ts[i] = (double) (steps - i) * ratio + config.stepsOffset();
                    }
                }
                default -> { // trailing
                    double ratio = (double) t / steps;
                    for (int i = 0; i < steps; i++) {
                        ts[i] = Math.rint(t - i * ratio) - 1;
                    }
                }
            }
            double[] sigmas = new double[steps + 1];
            if (karras) {
                double[] k = Spacing.karras(train[0], train[train.length - 1], steps);
                for (int i = 0; i < steps; i++) {
                    sigmas[i] = (float) k[i];
                    ts[i] = Math.rint(Spacing.sigmaToT(k[i], train));
                }
            } else if (config.useLuLambdas()) {
                // _convert_to_lu with rho 1: log-sigma uniform from the largest training sigma's to the smallest's
                double max = (float) Math.log(train[train.length - 1]);
                double min = (float) Math.log(train[0]);
                for (int i = 0; i < steps; i++) {
                    double ramp = steps == 1 ? 0 : (double) i / (steps - 1);
                    double sigma = Math.exp(max + ramp * (min - max));
                    sigmas[i] = (float) sigma;
                    ts[i] = Math.rint(Spacing.sigmaToT(sigma, train));
                }
            } else {
                for (int i = 0; i < steps; i++) {
                    sigmas[i] = (float) Spacing.interp(train, ts[i]);
                }
            }
            sigmas[steps] = finalSigmaMin ? train[0] : 0;
            int[] out = new int[steps];
            for (int i = 0; i < steps; i++) {
                out[i] = (int) ts[i];
            }
            return new Timeline(out, sigmas);
        }
    }

    @Override
    public final int steps() {
        return timesteps.length;
    }

    @Override
    public final double timestep(int index) {
        return timesteps[index];
    }

    /** sigma at step index (index == steps() gives the final sigma). */
    public final double sigma(int index) {
        return sigmas[index];
    }

    /** alpha_t = 1 / sqrt(sigma^2 + 1) of the variance-preserving process. */
    static double alpha(double sigma) {
        return 1 / Math.sqrt(sigma * sigma + 1);
    }

    /** lambda = log(alpha_t / sigma_t), the half log-SNR. */
    static double lambda(double sigma) {
        double a = alpha(sigma);
        return Math.log(a) - Math.log(sigma * a);
    }

    @Override
    public final FloatTensor addNoise(FloatTensor original, FloatTensor noise, int index) {
        return noised(original, noise, sigmas[index]);
    }

    /** alpha_t x + sigma_t n with alpha_t = 1 / sqrt(sigma^2 + 1), sigma_t = sigma alpha_t. */
    static FloatTensor noised(FloatTensor original, FloatTensor noise, double sigma) {
        return AlphaPrediction.combine(original, alpha(sigma), noise, sigma * alpha(sigma));
    }

    /**
     * diffusers' convert_model_output to a data prediction at the sample's sigma: x0 from epsilon, v or the sample
     * itself, then the config's dynamic thresholding when it sets one. {@code alphaS} and {@code sigmaS} are
     * alpha_t and sigma_t there.
     */
    protected final float[] dataPrediction(FloatTensor sample, FloatTensor modelOutput, double alphaS, double sigmaS) {
        float[] m = modelOutput.data();
        float[] x = sample.data();
        float[] x0 = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            x0[i] = (float) switch (config.predictionType()) {
                case "epsilon" -> (x[i] - sigmaS * m[i]) / alphaS;
                case "v_prediction" -> alphaS * x[i] - sigmaS * m[i];
                default -> m[i]; // sample
            };
        }
        return config.thresholding() == null ? x0 : config.thresholding().apply(x0, sample.dim(0));
    }
}
