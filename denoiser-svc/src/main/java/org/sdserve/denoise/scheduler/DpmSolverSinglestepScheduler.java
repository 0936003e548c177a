package org.sdserve.denoise.scheduler;

import org.sdserve.common.noise.NoiseSource;
import org.sdserve.common.tensor.FloatTensor;

/**
 * Singlestep DPM-Solver++ (Lu et al., arXiv:2211.01095), following diffusers' DPMSolverSinglestepScheduler with
 * algorithm_type "dpmsolver++", solver_order 2, solver_type "midpoint": steps go in pairs, orders 1, 2, 1, 2, ...;
 * a pair's first step is a first-order update from its start x_s1 (its output only feeds the model), its second
 * the second-order update from x_s1 over both intervals with the two x0 predictions: h = lambda_t - lambda_s1,
 * r0 = (lambda_s0 - lambda_s1) / h, x_t = (sigma_t / sigma_s1) x_s1 - alpha_t (e^-h - 1) (x0_s1 + 0.5 (x0_s0 -
 * x0_s1) / r0). An odd step count ends with one first-order step (diffusers then turns lower_order_final on, its
 * default being off), and so does a final sigma of 0. Timesteps are linspace (this scheduler has no other spacing).
 */
public final class DpmSolverSinglestepScheduler extends MultistepScheduler {
    private final int[] orders;
    private float[] previousX0; // diffusers' model_outputs[-2]
    private float[] pairStart; // diffusers' self.sample: the sample the current pair started from

    public DpmSolverSinglestepScheduler(SchedulerConfig config, int steps, boolean karras) {
        super(config, Timeline.of(config.withSpacing("linspace", 0), steps, karras,
                config.finalSigmasType().equals("sigma_min")));
        this.orders = new int[steps];
        for (int i = 0; i < steps; i++) {
            orders[i] = i % 2 == 0 ? 1 : 2;
        }
        if (steps % 2 == 1 || config.finalSigmasType().equals("zero")) {
            orders[steps - 1] = 1;
        }
    }

    @Override
    public History history() {
        return History.of("previous_x0", previousX0, "sample", pairStart);
    }

    @Override
    public void restore(History h) {
        previousX0 = h.array("previous_x0");
        pairStart = h.array("sample");
    }

    @Override
    public StepResult step(FloatTensor modelOutput, int index, FloatTensor sample, NoiseSource noise) {
        double sigmaS0 = sigmas[index];
        double sigmaT = sigmas[index + 1];
        double alphaS0 = alpha(sigmaS0);
        double alphaT = alpha(sigmaT);
        double sigT = sigmaT * alphaT;
        float[] x0 = dataPrediction(sample, modelOutput, alphaS0, sigmaS0 * alphaS0);
        int order = orders[index] == 2 && previousX0 != null && pairStart != null ? 2 : 1;
        float[] x = sample.data();
        if (order == 1) {
            pairStart = x;
        }
        float[] out = new float[x.length];
        if (order == 1) {
            double h = lambda(sigmaT) - lambda(sigmaS0);
            double ratio = sigmaT == 0 ? 0 : sigT / (sigmaS0 * alphaS0);
            double k = alphaT * (Math.exp(-h) - 1);
            for (int i = 0; i < x.length; i++) {
                out[i] = (float) (ratio * pairStart[i] - k * x0[i]);
            }
        } else {
            double sigmaS1 = sigmas[index - 1];
            double alphaS1 = alpha(sigmaS1);
            double h = lambda(sigmaT) - lambda(sigmaS1);
            double r0 = (lambda(sigmaS0) - lambda(sigmaS1)) / h;
            double ratio = sigmaT == 0 ? 0 : sigT / (sigmaS1 * alphaS1);
            double k = alphaT * (Math.exp(-h) - 1);
            for (int i = 0; i < x.length; i++) {
                double d0 = previousX0[i];
                double d1 = (x0[i] - previousX0[i]) / r0;
                out[i] = (float) (ratio * pairStart[i] - k * d0 - 0.5 * k * d1);
            }
        }
        previousX0 = x0;
        return new StepResult(new FloatTensor(sample.shape(), out), new FloatTensor(sample.shape(), x0));
    }
}
