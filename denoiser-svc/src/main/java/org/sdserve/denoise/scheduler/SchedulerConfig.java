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
 */
public record SchedulerConfig(int numTrainTimesteps, double betaStart, double betaEnd, String betaSchedule,
                              double[] trainedBetas, boolean setAlphaToOne, int stepsOffset,
                              String timestepSpacing, String predictionType, boolean clipSample,
                              double clipSampleRange, boolean useKarrasSigmas, String finalSigmasType,
                              boolean lowerOrderFinal, boolean skipPrkSteps) {

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
        return new SchedulerConfig(1000, 0.00085, 0.012, "scaled_linear", null, false, 1, "leading", "epsilon",
                false, 1.0, false, "zero", true, true);
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
        return new SchedulerConfig(n, start, end, schedule, trainedBetas, setAlphaToOne, stepsOffset,
                timestepSpacing, predictionType, clipSample, clipSampleRange, useKarrasSigmas, finalSigmasType,
                lowerOrderFinal, skipPrkSteps);
    }

    public SchedulerConfig withSpacing(String spacing, int offset) {
        return new SchedulerConfig(numTrainTimesteps, betaStart, betaEnd, betaSchedule, trainedBetas, setAlphaToOne,
                offset, spacing, predictionType, clipSample, clipSampleRange, useKarrasSigmas, finalSigmasType,
                lowerOrderFinal, skipPrkSteps);
    }

    public SchedulerConfig withPrediction(String type) {
        return new SchedulerConfig(numTrainTimesteps, betaStart, betaEnd, betaSchedule, trainedBetas, setAlphaToOne,
                stepsOffset, timestepSpacing, type, clipSample, clipSampleRange, useKarrasSigmas, finalSigmasType,
                lowerOrderFinal, skipPrkSteps);
    }

    public SchedulerConfig withKarras(boolean karras) {
        return new SchedulerConfig(numTrainTimesteps, betaStart, betaEnd, betaSchedule, trainedBetas, setAlphaToOne,
                stepsOffset, timestepSpacing, predictionType, clipSample, clipSampleRange, karras, finalSigmasType,
                lowerOrderFinal, skipPrkSteps);
    }

    public SchedulerConfig withDpmFinal(String sigmasType, boolean lowerOrder) {
        return new SchedulerConfig(numTrainTimesteps, betaStart, betaEnd, betaSchedule, trainedBetas, setAlphaToOne,
                stepsOffset, timestepSpacing, predictionType, clipSample, clipSampleRange, useKarrasSigmas, sigmasType,
                lowerOrder, skipPrkSteps);
    }

    public SchedulerConfig withSkipPrk(boolean skip) {
        return new SchedulerConfig(numTrainTimesteps, betaStart, betaEnd, betaSchedule, trainedBetas, setAlphaToOne,
                stepsOffset, timestepSpacing, predictionType, clipSample, clipSampleRange, useKarrasSigmas, finalSigmasType,
                lowerOrderFinal, skip);
    }

    public SchedulerConfig withClipSample(boolean clip) {
        return new SchedulerConfig(numTrainTimesteps, betaStart, betaEnd, betaSchedule, trainedBetas, setAlphaToOne,
                stepsOffset, timestepSpacing, predictionType, clip, clipSampleRange, useKarrasSigmas, finalSigmasType,
                lowerOrderFinal, skipPrkSteps);
    }

    public SchedulerConfig withAlphaToOne(boolean one) {
        return new SchedulerConfig(numTrainTimesteps, betaStart, betaEnd, betaSchedule, trainedBetas, one,
                stepsOffset, timestepSpacing, predictionType, clipSample, clipSampleRange, useKarrasSigmas, finalSigmasType,
                lowerOrderFinal, skipPrkSteps);
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
        refuseIf(n.path("thresholding").asBoolean(false), "thresholding=true (dynamic thresholding)");
        refuseIf(n.path("rescale_betas_zero_snr").asBoolean(false), "rescale_betas_zero_snr=true");
        refuseIf(n.path("use_exponential_sigmas").asBoolean(false), "use_exponential_sigmas=true");
        refuseIf(n.path("use_beta_sigmas").asBoolean(false), "use_beta_sigmas=true");
        refuseIf(n.path("euler_at_final").asBoolean(false), "euler_at_final=true");
        refuseIf(n.path("use_lu_lambdas").asBoolean(false), "use_lu_lambdas=true");
        double[] trained = null;
        if (n.hasNonNull("trained_betas")) {
            JsonNode tb = n.get("trained_betas");
            trained = new double[tb.size()];
            for (int i = 0; i < trained.length; i++) {
                trained[i] = tb.get(i).asDouble();
            }
        }
        int steps = n.path("num_train_timesteps").asInt(1000);
        return new SchedulerConfig(trained != null ? trained.length : steps,
                n.path("beta_start").asDouble(0.0001), n.path("beta_end").asDouble(0.02),
                n.path("beta_schedule").asText("linear"), trained, n.path("set_alpha_to_one").asBoolean(true),
                n.path("steps_offset").asInt(0), n.path("timestep_spacing").asText("leading"),
                n.path("prediction_type").asText("epsilon"), n.path("clip_sample").asBoolean(false),
                n.path("clip_sample_range").asDouble(1.0), n.path("use_karras_sigmas").asBoolean(false),
                n.path("final_sigmas_type").asText("zero"), n.path("lower_order_final").asBoolean(true),
                n.path("skip_prk_steps").asBoolean(false));
    }

    private static void refuseIf(boolean bad, String what) {
        if (bad) {
            throw new ModelContractException("scheduler_config: " + what + " is not supported by this service");
        }
    }
}
