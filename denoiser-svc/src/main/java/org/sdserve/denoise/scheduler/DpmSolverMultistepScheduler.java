package org.sdserve.denoise.scheduler;

import org.sdserve.common.tensor.FloatTensor;
import org.sdserve.common.noise.NoiseSource;

/**
 * DPM-Solver++(2M) (Lu et al., arXiv:2211.01095, Algorithm 2), following diffusers'
 * DPMSolverMultistepScheduler with algorithm_type "dpmsolver++", solver_order 2, solver_type "midpoint";
 * lower_order_final and final_sigmas_type from the config (defaults true and "zero"). With alpha_t = 1/sqrt(sigma^2+1), sigma_t = sigma alpha_t,
 * lambda = log(alpha_t / sigma_t), h = lambda_t - lambda_s:
 * first order x_t = (sigma_t/sigma_s) x - alpha_t (e^-h - 1) x0;
 * second order adds -0.5 alpha_t (e^-h - 1) (x0 - x0_prev) / r, r = h_prev / h.
 */
public final class DpmSolverMultistepScheduler implements Scheduler {
    private final SchedulerConfig config;
    private final int[] timesteps;
    private final double[] sigmas;
    private float[] previousX0;
    private int lowerOrderNums;

    public DpmSolverMultistepScheduler(SchedulerConfig config, int steps, boolean karras) {
        this.config = config;
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
        this.sigmas = new double[steps + 1];
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
        // final_sigmas_type: "zero", or "sigma_min" = the smallest training sigma
        sigmas[steps] = config.finalSigmasType().equals("zero") ? 0 : train[0];
        this.timesteps = new int[steps];
        for (int i = 0; i < steps; i++) {
            timesteps[i] = (int) ts[i];
        }
    }

    @Override
    public int steps() {
        return timesteps.length;
    }

    @Override
    public double timestep(int index) {
        return timesteps[index];
    }

    /** sigma at step index (index == steps() gives the final sigma). */
    public double sigma(int index) {
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
    public FloatTensor addNoise(FloatTensor original, FloatTensor noise, int index) {
        return noised(original, noise, sigmas[index]);
    }

    /** alpha_t x + sigma_t n with alpha_t = 1 / sqrt(sigma^2 + 1), sigma_t = sigma alpha_t. */
    static FloatTensor noised(FloatTensor original, FloatTensor noise, double sigma) {
        return AlphaPrediction.combine(original, alpha(sigma), noise, sigma * alpha(sigma));
    }

    /** The previous step's x0 prediction (diffusers' model_outputs[-2] at the next step). */
    @Override
    public History history() {
        return History.of("previous_x0", previousX0);
    }

    @Override
    public void restore(History h) {
        previousX0 = h.array("previous_x0");
    }

    @Override
    public StepResult step(FloatTensor modelOutput, int index, FloatTensor sample, NoiseSource noise) {
        double sigmaS = sigmas[index];
        double sigmaT = sigmas[index + 1];
        double alphaS = alpha(sigmaS);
        double sigS = sigmaS * alphaS;
        double alphaT = alpha(sigmaT);
        double sigT = sigmaT * alphaT;
        double h = lambda(sigmaT) - lambda(sigmaS);
        double expm = Math.exp(-h) - 1; // e^-h - 1
        boolean lowerOrderFinal = index == timesteps.length - 1
                && ((config.lowerOrderFinal() && timesteps.length < 15) || config.finalSigmasType().equals("zero"));
        boolean secondOrder = lowerOrderNums >= 1 && !lowerOrderFinal && previousX0 != null;
        double r = 0;
        if (secondOrder) {
            double hPrev = lambda(sigmaS) - lambda(sigmas[index - 1]);
            r = hPrev / h;
        }
        float[] m = modelOutput.data();
        float[] x = sample.data();
        float[] x0 = new float[x.length];
        float[] out = new float[x.length];
        double ratio = sigmaT == 0 ? 0 : sigT / sigS;
        for (int i = 0; i < x.length; i++) {
            double p = switch (config.predictionType()) {
                case "epsilon" -> (x[i] - sigS * m[i]) / alphaS;
                case "v_prediction" -> alphaS * x[i] - sigS * m[i];
                default -> m[i]; // sample
            };
            x0[i] = (float) p;
        }
        if (config.thresholding() != null) {
            x0 = config.thresholding().apply(x0, sample.dim(0));
        }
        for (int i = 0; i < x.length; i++) {
            double p = x0[i];
            double v = ratio * x[i] - alphaT * expm * p;
            if (secondOrder) {
                v -= 0.5 * alphaT * expm * (p - previousX0[i]) / r;
            }
            out[i] = (float) v;
        }
        previousX0 = x0;
        lowerOrderNums = Math.min(lowerOrderNums + 1, 2);
        return new StepResult(new FloatTensor(sample.shape(), out), new FloatTensor(sample.shape(), x0));
    }
}
