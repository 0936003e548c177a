package org.sdserve.denoise.scheduler;

import org.sdserve.common.noise.NoiseSource;
import org.sdserve.common.tensor.FloatTensor;

/**
 * Trajectory consistency distillation sampling (Zheng et al., arXiv:2402.19159), following diffusers' TCDScheduler:
 * LCM's timesteps (the 50-step distillation schedule), and at each step, with gamma in [0, 1] (the request's eta),
 * s = floor((1 - gamma) t_prev): x0 and eps from the model, the estimate at s, sqrt(a_s) x0 + sqrt(1 - a_s) eps, then
 * (gamma > 0, not the last step) noised forward to t_prev: sqrt(a_prev / a_s) x_s + sqrt(1 - a_prev / a_s) z. Gamma 0
 * is deterministic; diffusers' TCD pipeline uses 0.3. Meant for TCD-distilled UNets (LoRAs), as lcm is for LCM.
 */
public final class TcdScheduler extends AlphaScheduler {
    private final float gamma;

    public TcdScheduler(SchedulerConfig config, int steps, float gamma) {
        super(config, LcmScheduler.distilledTimesteps(config, steps, "tcd"));
        this.gamma = gamma;
    }

    @Override
    public boolean stochastic() {
        return gamma > 0;
    }

    /** One step in float32, in diffusers' order of operations. */
    @Override
    public StepResult step(FloatTensor modelOutput, int index, FloatTensor sample, NoiseSource noise) {
        int t = timesteps[index];
        boolean last = index == timesteps.length - 1;
        int prev = last ? 0 : timesteps[index + 1];
        int s = (int) Math.floor((1 - gamma) * prev);
        float aT = schedule.alphaCumprod(t);
        float aPrev = schedule.alphaCumprod(prev);
        float aS = schedule.alphaCumprod(s);
        float sqrtAT = (float) Math.sqrt(aT);
        float sqrtBT = (float) Math.sqrt(1f - aT);
        float sqrtAS = (float) Math.sqrt(aS);
        float sqrtBS = (float) Math.sqrt(1f - aS);
        boolean renoise = gamma > 0 && !last;
        float[] z = renoise ? noise.randn(sample.shape()).data() : null;
        float keep = (float) Math.sqrt(aPrev / aS);
        float fresh = (float) Math.sqrt(1f - aPrev / aS);
        float[] m = modelOutput.data();
        float[] x = sample.data();
        float[] x0 = new float[x.length];
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            float p;
            float eps;
            switch (config.predictionType()) {
                case "epsilon" -> {
                    p = (x[i] - sqrtBT * m[i]) / sqrtAT;
                    eps = m[i];
                }
                case "v_prediction" -> {
                    p = sqrtAT * x[i] - sqrtBT * m[i];
                    eps = sqrtAT * m[i] + sqrtBT * x[i];
                }
                default -> { // sample
                    p = m[i];
                    eps = (x[i] - sqrtAT * p) / sqrtBT;
                }
            }
            x0[i] = p;
            float noised = sqrtAS * p + sqrtBS * eps;
            out[i] = renoise ? keep * noised + fresh * z[i] : noised;
        }
        return new StepResult(new FloatTensor(sample.shape(), out), new FloatTensor(sample.shape(), x0));
    }
}
