package org.sdserve.denoise.scheduler;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import org.sdserve.common.error.ModelContractException;

/**
 * The training noise schedule and sampler options of a model, as diffusers writes them in
 * {@code scheduler/scheduler_config.json}. Any scheduler can run on any config (diffusers' "compatibles"):
 * the config gives the training schedule, the request picks the sampler.
 *
 * @param timestepSpacing "leading" (SD 1.x), "trailing" or "linspace"
 * @param predictionType "epsilon", "v_prediction" (SD 2.x 768) or "sample"
 * @param finalSigmasType DPM-Solver's last sigma: "zero" (default) or "sigma_min"
 * @param lowerOrderFinal DPM-Solver / UniPC: lower order at the last step(s) when there are fewer than 15 steps
 * @param skipPrkSteps PNDM: start with PLMS steps (SD 1.x configs say true) instead of the 12 Runge-Kutta steps
 * @param thresholding dynamic thresholding of the predicted x0 (Imagen; DPM-Solver++ here), null = off
 * @param useLuLambdas DPM-Solver++: timesteps uniform in log-sigma between the training ends (Lu et al. 2022)
 */
public record SchedulerConfig(int numTrainTimesteps, double betaStart, double betaEnd, String betaSchedule,
                              double[] trainedBetas, boolean setAlphaToOne, int stepsOffset,
                              String timestepSpacing, String predictionType, boolean clipSample,
                              double clipSampleRange, boolean useKarrasSigmas, String finalSigmasType,
                              boolean lowerOrderFinal, boolean skipPrkSteps, Thresholding thresholding,
                              boolean useLuLambdas) {

    /**
     * diffusers' _threshold_sample (Saharia et al. 2022): per image, s = the {@code ratio} quantile of |x0|,
     * clamped to [1, maxValue] (torch.clamp: maxValue wins when below 1); x0 = clamp(x0, -s, s) / s.
     */
    public record Thresholding(double ratio, double maxValue) {
        /** In float32 as torch: torch.quantile's linear interpolation, then the clamp and the division. */
        public float[] apply(float[] x0, int batch) {
            int n = x0.length / batch;
            float[] out = new float[x0.length];
            float[] sorted = new float[n];
            for (int b = 0; b < batch; b++) {
                for (int i = 0; i < n; i++) {
                    sorted[i] = Math.abs(x0[b * n + i]);
                }
                java.util.Arrays.sort(sorted);
                float rank = (float) ratio * (n - 1);
                int below = (int) Math.floor(rank);
                int above = Math.min(below + 1, n - 1);
                float w = rank - below;
                float lo = sorted[below];
                float hi = sorted[above];
                float q = w < 0.5f ? lo + w * (hi - lo) : hi - (hi - lo) * (1 - w); // torch.lerp
                float limit = (float) Math.min(Math.max(q, 1.0), maxValue);
                for (int i = 0; i < n; i++) {
                    float v = x0[b * n + i];
                    out[b * n + i] = Math.max(-limit, Math.min(limit, v)) / limit;
                }
            }
            return out;
        }
    }

    /** Keys diffusers writes that either we honour or that do not change the sampling of these schedulers. */
    private static final Set<String> KNOWN = Set.of("_class_name", "_diffusers_version", "num_train_timesteps",
            "beta_start", "beta_end", "beta_schedule", "trained_betas", "set_alpha_to_one", "steps_offset",
            "timestep_spacing", "prediction_type", "clip_sample", "clip_sample_range", "use_karras_sigmas",
            "skip_prk_steps", "thresholding", "dynamic_thresholding_ratio", "sample_max_value",
            "rescale_betas_zero_snr", "interpolation_type", "timestep_type", "sigma_min", "sigma_max",
            "solver_order", "algorithm_type", "solver_type", "lower_order_final", "euler_at_final",
            "use_lu_lambdas", "final_sigmas_type", "lambda_min_clipped", "variance_type", "use_exponential_sigmas",
            "use_beta_sigmas");

    /** SD 1.5's config: what the demo model ships and what the scheduler tests start from. */
    public static SchedulerConfig sd15() {
        return new Builder().betas(1000, 0.00085, 0.012, "scaled_linear").alphaToOne(false).spacing("leading", 1)
                .skipPrk(true).build();
    }

    public SchedulerConfig {
        if (!List.of("linear", "scaled_linear", "squaredcos_cap_v2").contains(betaSchedule) && trainedBetas == null) {
            throw new ModelContractException("scheduler_config: beta_schedule must be linear, scaled_linear or "
                    + "squaredcos_cap_v2 (or trained_betas given), got \"" + betaSchedule + "\"");
        }
        if (!List.of("leading", "trailing", "linspace").contains(timestepSpacing)) {
            throw new ModelContractException("scheduler_config: timestep_spacing must be leading, trailing or "
                    + "linspace, got \"" + timestepSpacing + "\"");
        }
        if (!List.of("epsilon", "v_prediction", "sample").contains(predictionType)) {
            throw new ModelContractException("scheduler_config: prediction_type must be epsilon, v_prediction or "
                    + "sample, got \"" + predictionType + "\"");
        }
        if (!List.of("zero", "sigma_min").contains(finalSigmasType)) {
            throw new ModelContractException("scheduler_config: final_sigmas_type must be zero or sigma_min, got \""
                    + finalSigmasType + "\"");
        }
        if (numTrainTimesteps < 2) {
            throw new ModelContractException("scheduler_config: num_train_timesteps must be >= 2, got "
                    + numTrainTimesteps);
        }
    }

    public SchedulerConfig withBetas(int n, double start, double end, String schedule) {
        return toBuilder().betas(n, start, end, schedule).build();
    }

    public SchedulerConfig withSpacing(String spacing, int offset) {
        return toBuilder().spacing(spacing, offset).build();
    }

    public SchedulerConfig withPrediction(String type) {
        return toBuilder().prediction(type).build();
    }

    public SchedulerConfig withKarras(boolean karras) {
        return toBuilder().karras(karras).build();
    }

    public SchedulerConfig withDpmFinal(String sigmasType, boolean lowerOrder) {
        return toBuilder().dpmFinal(sigmasType, lowerOrder).build();
    }

    public SchedulerConfig withSkipPrk(boolean skip) {
        return toBuilder().skipPrk(skip).build();
    }

    public SchedulerConfig withClipSample(boolean clip) {
        return toBuilder().clipSample(clip).build();
    }

    public SchedulerConfig withThresholding(Thresholding t) {
        return toBuilder().thresholding(t).build();
    }

    public SchedulerConfig withLuLambdas(boolean lu) {
        return toBuilder().luLambdas(lu).build();
    }

    public SchedulerConfig withAlphaToOne(boolean one) {
        return toBuilder().alphaToOne(one).build();
    }

    public Builder toBuilder() {
        Builder b = new Builder();
        b.numTrainTimesteps = numTrainTimesteps;
        b.betaStart = betaStart;
        b.betaEnd = betaEnd;
        b.betaSchedule = betaSchedule;
        b.trainedBetas = trainedBetas;
        b.setAlphaToOne = setAlphaToOne;
        b.stepsOffset = stepsOffset;
        b.timestepSpacing = timestepSpacing;
        b.predictionType = predictionType;
        b.clipSample = clipSample;
        b.clipSampleRange = clipSampleRange;
        b.useKarrasSigmas = useKarrasSigmas;
        b.finalSigmasType = finalSigmasType;
        b.lowerOrderFinal = lowerOrderFinal;
        b.skipPrkSteps = skipPrkSteps;
        b.thresholding = thresholding;
        b.useLuLambdas = useLuLambdas;
        return b;
    }

    /** diffusers' defaults where a config is silent (linear betas 0.0001..0.02 over 1000 steps, leading, epsilon). */
    public static final class Builder {
        private int numTrainTimesteps = 1000;
        private double betaStart = 0.0001;
        private double betaEnd = 0.02;
        private String betaSchedule = "linear";
        private double[] trainedBetas;
        private boolean setAlphaToOne = true;
        private int stepsOffset;
        private String timestepSpacing = "leading";
        private String predictionType = "epsilon";
        private boolean clipSample;
        private double clipSampleRange = 1.0;
        private boolean useKarrasSigmas;
        private String finalSigmasType = "zero";
        private boolean lowerOrderFinal = true;
        private boolean skipPrkSteps;
        private Thresholding thresholding;
        private boolean useLuLambdas;

        public Builder thresholding(Thresholding t) {
            thresholding = t;
            return this;
        }

        public Builder luLambdas(boolean lu) {
            useLuLambdas = lu;
            return this;
        }

        public Builder betas(int n, double start, double end, String schedule) {
            numTrainTimesteps = n;
            betaStart = start;
            betaEnd = end;
            betaSchedule = schedule;
            return this;
        }

        public Builder trainedBetas(double[] betas) {
            trainedBetas = betas;
            if (betas != null) {
                numTrainTimesteps = betas.length;
            }
            return this;
        }

        public Builder spacing(String spacing, int offset) {
            timestepSpacing = spacing;
            stepsOffset = offset;
            return this;
        }

        public Builder prediction(String type) {
            predictionType = type;
            return this;
        }

        public Builder karras(boolean karras) {
            useKarrasSigmas = karras;
            return this;
        }

        public Builder dpmFinal(String sigmasType, boolean lowerOrder) {
            finalSigmasType = sigmasType;
            lowerOrderFinal = lowerOrder;
            return this;
        }

        public Builder skipPrk(boolean skip) {
            skipPrkSteps = skip;
            return this;
        }

        public Builder clipSample(boolean clip) {
            clipSample = clip;
            return this;
        }

        public Builder clipSampleRange(double range) {
            clipSampleRange = range;
            return this;
        }

        public Builder alphaToOne(boolean one) {
            setAlphaToOne = one;
            return this;
        }

        public SchedulerConfig build() {
            return new SchedulerConfig(numTrainTimesteps, betaStart, betaEnd, betaSchedule, trainedBetas, setAlphaToOne,
                    stepsOffset, timestepSpacing, predictionType, clipSample, clipSampleRange, useKarrasSigmas,
                    finalSigmasType, lowerOrderFinal, skipPrkSteps, thresholding, useLuLambdas);
        }
    }

    /**
     * Parses scheduler_config.json. Absent keys take diffusers' defaults; unknown keys and options that would
     * change sampling in ways these schedulers do not implement are refused, never ignored.
     */
    public static SchedulerConfig parse(JsonNode n) {
        List<String> unknown = new ArrayList<>();
        for (Iterator<String> it = n.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!KNOWN.contains(k)) {
                unknown.add(k);
            }
        }
        if (!unknown.isEmpty()) {
            throw new ModelContractException("scheduler_config: unknown option(s) " + unknown
                    + "; refusing rather than ignoring them");
        }
        refuseIf(n.path("rescale_betas_zero_snr").asBoolean(false), "rescale_betas_zero_snr=true");
        refuseIf(n.path("use_exponential_sigmas").asBoolean(false), "use_exponential_sigmas=true");
        refuseIf(n.path("use_beta_sigmas").asBoolean(false), "use_beta_sigmas=true");
        refuseIf(n.path("euler_at_final").asBoolean(false), "euler_at_final=true");
        double[] trained = null;
        if (n.hasNonNull("trained_betas")) {
            JsonNode tb = n.get("trained_betas");
            trained = new double[tb.size()];
            for (int i = 0; i < trained.length; i++) {
                trained[i] = tb.get(i).asDouble();
            }
        }
        return new Builder()
                .betas(n.path("num_train_timesteps").asInt(1000), n.path("beta_start").asDouble(0.0001),
                        n.path("beta_end").asDouble(0.02), n.path("beta_schedule").asText("linear"))
                .trainedBetas(trained).alphaToOne(n.path("set_alpha_to_one").asBoolean(true))
                .spacing(n.path("timestep_spacing").asText("leading"), n.path("steps_offset").asInt(0))
                .prediction(n.path("prediction_type").asText("epsilon"))
                .clipSample(n.path("clip_sample").asBoolean(false))
                .clipSampleRange(n.path("clip_sample_range").asDouble(1.0))
                .karras(n.path("use_karras_sigmas").asBoolean(false))
                .dpmFinal(n.path("final_sigmas_type").asText("zero"), n.path("lower_order_final").asBoolean(true))
                .skipPrk(n.path("skip_prk_steps").asBoolean(false))
                .thresholding(n.path("thresholding").asBoolean(false) ? new Thresholding(
                        n.path("dynamic_thresholding_ratio").asDouble(0.995), n.path("sample_max_value").asDouble(1.0))
                        : null)
                .luLambdas(n.path("use_lu_lambdas").asBoolean(false)).build();
    }

    private static void refuseIf(boolean bad, String what) {
        if (bad) {
            throw new ModelContractException("scheduler_config: " + what + " is not supported by this service");
        }
    }
}
