package org.sdserve.denoise.scheduler;

import org.sdserve.common.noise.NoiseSource;
import org.sdserve.common.tensor.FloatTensor;

/**
 * DEIS (Zhang and Chen, arXiv:2204.13902), following diffusers' DEISMultistepScheduler with algorithm_type "deis",
 * solver_type "logrho", solver_order 2, lower_order_final: the model output as noise (through x0, for thresholding:
 * eps = (x - alpha_t x0) / sigma_t), then with rho = sigma_t / alpha_t
 * first order x_t = (alpha_t / alpha_s) x - sigma_t (e^h - 1) eps, h = lambda_t - lambda_s;
 * second order x_t = alpha_t (x / alpha_s0 + c1 eps0 + c2 eps1), c_i the integrals of the Lagrange basis in log rho.
 * Timesteps and sigmas as DPM-Solver++'s, the final sigma the smallest training one.
 */
public final class DeisMultistepScheduler extends MultistepScheduler {
    private float[] previousEps;
    private int lowerOrderNums;

    public DeisMultistepScheduler(SchedulerConfig config, int steps, boolean karras) {
        super(config, Timeline.of(config, steps, karras, true));
    }

    /** The previous step's model output as noise (diffusers' model_outputs[-2] at the next step). */
    @Override
    public History history() {
        return History.of("previous_eps", previousEps);
    }

    @Override
    public void restore(History h) {
        previousEps = h.array("previous_eps");
    }

    /** Integrate[(log t - log c) / (log b - log c), t]: diffusers' ind_fn. */
    private static double ind(double t, double b, double c) {
        return t * (-Math.log(c) + Math.log(t) - 1) / (Math.log(b) - Math.log(c));
    }

    @Override
    public StepResult step(FloatTensor modelOutput, int index, FloatTensor sample, NoiseSource noise) {
        double sigmaS = sigmas[index];
        double sigmaT = sigmas[index + 1];
        double alphaS = alpha(sigmaS);
        double sigS = sigmaS * alphaS;
        double alphaT = alpha(sigmaT);
        double sigT = sigmaT * alphaT;
        boolean lowerOrderFinal = index == timesteps.length - 1 && config.lowerOrderFinal() && timesteps.length < 15;
        boolean secondOrder = lowerOrderNums >= 1 && !lowerOrderFinal && previousEps != null;
        float[] x = sample.data();
        float[] x0 = dataPrediction(sample, modelOutput, alphaS, sigS);
        float[] eps = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            eps[i] = (float) ((x[i] - alphaS * x0[i]) / sigS);
        }
        float[] out = new float[x.length];
        if (secondOrder) {
            double sigmaS1 = sigmas[index - 1];
            double alphaS1 = alpha(sigmaS1);
            double sigS1 = sigmaS1 * alphaS1;
            double rhoT = sigT / alphaT; // rho = sigma_t / alpha_t (the k-diffusion sigma, as diffusers computes it)
            double rhoS0 = sigS / alphaS;
            double rhoS1 = sigS1 / alphaS1;
            double c1 = ind(rhoT, rhoS0, rhoS1) - ind(rhoS0, rhoS0, rhoS1);
            double c2 = ind(rhoT, rhoS1, rhoS0) - ind(rhoS0, rhoS1, rhoS0);
            for (int i = 0; i < x.length; i++) {
                out[i] = (float) (alphaT * (x[i] / alphaS + c1 * eps[i] + c2 * previousEps[i]));
            }
        } else {
            double h = lambda(sigmaT) - lambda(sigmaS);
            double k = sigT * (Math.exp(h) - 1);
            for (int i = 0; i < x.length; i++) {
                out[i] = (float) ((alphaT / alphaS) * x[i] - k * eps[i]);
            }
        }
        previousEps = eps;
        lowerOrderNums = Math.min(lowerOrderNums + 1, 2);
        return new StepResult(new FloatTensor(sample.shape(), out), new FloatTensor(sample.shape(), x0));
    }
}
