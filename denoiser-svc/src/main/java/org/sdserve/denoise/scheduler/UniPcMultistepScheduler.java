package org.sdserve.denoise.scheduler;


import org.sdserve.common.noise.NoiseSource;
import org.sdserve.common.tensor.FloatTensor;

/**
 * UniPC (Zhao et al., arXiv:2302.04867) with the B2(h) = e^h - 1 variant ("bh2"), order 2, data prediction, following
 * diffusers' UniPCMultistepScheduler: each step first corrects the current sample with UniC (using the new model
 * output), then predicts the next with UniP. Timesteps and sigmas as DPM-Solver (N+1 spaced, last dropped);
 * final sigma from final_sigmas_type; lower order at the end when lower_order_final.
 */
public final class UniPcMultistepScheduler extends MultistepScheduler {
    private static final int ORDER = 2;
    private final float[][] outputs = new float[ORDER][]; // converted model outputs, oldest first
    private float[] lastSample;
    private int lowerOrderNums;
    private int thisOrder;

    public UniPcMultistepScheduler(SchedulerConfig config, int steps, boolean karras) {
        super(config, timeline(config, steps, karras));
    }

    /** DPM-Solver's, except that with Karras sigmas a sigma_min final sigma repeats the last one. */
    private static Timeline timeline(SchedulerConfig config, int steps, boolean karras) {
        boolean sigmaMin = config.finalSigmasType().equals("sigma_min");
        Timeline t = Timeline.of(config, steps, karras, sigmaMin);
        if (karras && sigmaMin) {
            t.sigmas()[steps] = t.sigmas()[steps - 1];
        }
        return t;
    }

    /** diffusers' model_outputs (the last two converted outputs) and last_sample. */
    @Override
    public History history() {
        return History.of("model_output_older", outputs[0], "model_output_last", outputs[1], "last_sample",
                lastSample);
    }

    @Override
    public void restore(History h) {
        outputs[0] = h.array("model_output_older");
        outputs[1] = h.array("model_output_last");
        lastSample = h.array("last_sample");
    }

    @Override
    public StepResult step(FloatTensor modelOutput, int index, FloatTensor sample, NoiseSource noise) {
        double sigma = sigmas[index];
        double a = alpha(sigma);
        float[] x = sample.data();
        float[] m = dataPrediction(sample, modelOutput, a, sigma * a);
        if (index > 0 && lastSample != null) {
            x = corrector(m, index);
        }
        outputs[0] = outputs[1];
        outputs[1] = m;
        int order = config.lowerOrderFinal() ? Math.min(ORDER, timesteps.length - index) : ORDER;
        thisOrder = Math.min(order, lowerOrderNums + 1);
        lastSample = x;
        float[] out = predictor(x, index, thisOrder);
        lowerOrderNums = Math.min(lowerOrderNums + 1, ORDER);
        return new StepResult(new FloatTensor(sample.shape(), out), new FloatTensor(sample.shape(), m));
    }

    /** UniP: x_t = (sigma_t/sigma_s0) x - alpha_t (e^-h - 1) m0 - alpha_t B(h) 0.5 D1 (order 2). */
    private float[] predictor(float[] x, int i, int order) {
        double s0 = sigmas[i];
        double t = sigmas[i + 1];
        double h = lambda(t) - lambda(s0);
        double hPhi1 = Math.expm1(-h);
        double bh = hPhi1;
        double ratio = t == 0 ? 0 : (t * alpha(t)) / (s0 * alpha(s0));
        double at = alpha(t);
        float[] m0 = outputs[1];
        float[] out = new float[x.length];
        double rk = order == 2 ? (lambda(sigmas[i - 1]) - lambda(s0)) / h : 0;
        for (int k = 0; k < x.length; k++) {
            double v = ratio * x[k] - at * hPhi1 * m0[k];
            if (order == 2) {
                double d1 = (outputs[0][k] - m0[k]) / rk;
                v -= at * bh * 0.5 * d1;
            }
            out[k] = (float) v;
        }
        return out;
    }

    /** UniC: corrects the sample predicted at the previous step with the model output {@code m} at this step. */
    private float[] corrector(float[] m, int i) {
        double t = sigmas[i];
        double s0 = sigmas[i - 1];
        double h = lambda(t) - lambda(s0);
        double hh = -h;
        double hPhi1 = Math.expm1(hh);
        double bh = hPhi1;
        double at = alpha(t);
        double ratio = (t * alpha(t)) / (s0 * alpha(s0));
        float[] m0 = outputs[1];
        int order = thisOrder;
        double rhoD1 = 0;
        double rhoT;
        double rk = 0;
        if (order == 1) {
            rhoT = 0.5;
        } else {
            rk = (lambda(sigmas[i - 2]) - lambda(s0)) / h;
            // b_k from h_phi_k: h_phi_1 / hh - 1, then h_phi_k / hh - 1 / k!
            double hPhiK = hPhi1 / hh - 1;
            double b1 = hPhiK / bh;
            hPhiK = hPhiK / hh - 1.0 / 2;
            double b2 = hPhiK * 2 / bh;
            // solve [[1, 1], [rk, 1]] rho = [b1, b2]
            rhoD1 = (b1 - b2) / (1 - rk);
            rhoT = b1 - rhoD1;
        }
        float[] out = new float[m.length];
        for (int k = 0; k < m.length; k++) {
            double d1t = m[k] - m0[k];
            double corr = rhoT * d1t;
            if (order == 2) {
                corr += rhoD1 * (outputs[0][k] - m0[k]) / rk;
            }
            out[k] = (float) (ratio * lastSample[k] - at * hPhi1 * m0[k] - at * bh * corr);
        }
        return out;
    }
}
