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
 * The SDE form (algorithm_type "sde-dpmsolver++", DPM++ 2M SDE) draws noise z at every step:
 * x_t = (sigma_t/sigma_s) e^-h x + alpha_t (1 - e^-2h) (x0 + 0.5 (x0 - x0_prev) / r) + sigma_t sqrt(1 - e^-2h) z.
 */
public final class DpmSolverMultistepScheduler extends MultistepScheduler {
    private float[] previousX0;
    private int lowerOrderNums;

    private final boolean sde;

    public DpmSolverMultistepScheduler(SchedulerConfig config, int steps, boolean karras) {
        this(config, steps, karras, false);
    }

    /** @param sde the SDE form, sde-dpmsolver++ */
    public DpmSolverMultistepScheduler(SchedulerConfig config, int steps, boolean karras, boolean sde) {
        super(config, Timeline.of(config, steps, karras, config.finalSigmasType().equals("sigma_min")));
        this.sde = sde;
    }

    @Override
    public boolean stochastic() {
        return sde;
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
        float[] x = sample.data();
        float[] x0 = dataPrediction(sample, modelOutput, alphaS, sigS);
        float[] out = new float[x.length];
        double ratio = sigmaT == 0 ? 0 : sigT / sigS;
        if (sde) {
            float[] z = noise.randn(sample.shape()).data(); // every step, the last too (diffusers' step)
            double decay = ratio * Math.exp(-h);
            double c = alphaT * (1 - Math.exp(-2 * h));
            double spread = sigT * Math.sqrt(1 - Math.exp(-2 * h));
            for (int i = 0; i < x.length; i++) {
                double v = decay * x[i] + c * x0[i] + spread * z[i];
                if (secondOrder) {
                    v += 0.5 * c * (x0[i] - previousX0[i]) / r;
                }
                out[i] = (float) v;
            }
        } else {
            for (int i = 0; i < x.length; i++) {
                double p = x0[i];
                double v = ratio * x[i] - alphaT * expm * p;
                if (secondOrder) {
                    v -= 0.5 * alphaT * expm * (p - previousX0[i]) / r;
                }
                out[i] = (float) v;
            }
        }
        previousX0 = x0;
        lowerOrderNums = Math.min(lowerOrderNums + 1, 2);
        return new StepResult(new FloatTensor(sample.shape(), out), new FloatTensor(sample.shape(), x0));
    }
}
