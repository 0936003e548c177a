package org.sdserve.denoise.scheduler;

import java.util.List;
import org.sdserve.common.error.InvalidRequestException;

/** The scheduler names a request may choose, and a fresh instance per job. */
public final class Schedulers {
    public static final String DEFAULT = "ddim";
    /** Request names, as in the API documentation. */
    public static final List<String> NAMES = List.of("ddim", "euler", "euler_karras", "euler_a", "dpmpp_2m",
            "dpmpp_2m_karras", "ddpm", "pndm", "lms", "heun", "unipc", "lcm", "dpm2", "dpm2_a", "tcd", "deis", "dpmpp_2m_sde", "dpmpp_2m_sde_karras", "dpm_singlestep", "dpm_singlestep_karras",
            "euler_a_karras");

    private Schedulers() {
    }

    /**
     * @param name one of {@link #NAMES} ("" = {@link #DEFAULT})
     * @param eta DDIM's eta in [0, 1], TCD's gamma; the other schedulers ignore it
     */
    public static Scheduler create(String name, SchedulerConfig config, int steps, float eta) {
        boolean karras = config.useKarrasSigmas();
        requireKnown(name);
        if (LEADING.contains(name) && "leading".equals(config.timestepSpacing())) {
            // diffusers' "leading" spacing: t = i * (train // steps) + steps_offset must stay below train
            int max = config.numTrainTimesteps() - config.stepsOffset();
            InvalidRequestException.require(steps <= max, "%s: steps must be at most %d for this model "
                    + "(num_train_timesteps %d, steps_offset %d), got %d", name, max, config.numTrainTimesteps(),
                    config.stepsOffset(), steps);
        }
        InvalidRequestException.require(!name.equals("pndm") || steps >= 2,
                "pndm: steps must be at least 2 (its PLMS warm-up), got %d", steps);
        return switch (name.isEmpty() ? DEFAULT : name) {
            case "ddim" -> new DdimScheduler(config, steps, eta);
            case "euler" -> new EulerDiscreteScheduler(config, steps, karras);
            case "euler_karras" -> new EulerDiscreteScheduler(config, steps, true);
            case "euler_a" -> new EulerAncestralScheduler(config, steps);
            case "euler_a_karras" -> new EulerAncestralScheduler(config, steps, true);
            case "dpmpp_2m" -> new DpmSolverMultistepScheduler(config, steps, karras);
            case "dpmpp_2m_karras" -> new DpmSolverMultistepScheduler(config, steps, true);
            case "ddpm" -> new DdpmScheduler(config, steps);
            case "pndm" -> new PndmScheduler(config, steps);
            case "lms" -> new LmsDiscreteScheduler(config, steps, karras);
            case "heun" -> new HeunDiscreteScheduler(config, steps, karras);
            case "unipc" -> new UniPcMultistepScheduler(config, steps, karras);
            case "lcm" -> new LcmScheduler(config, steps);
            case "dpm2" -> new KDpm2Scheduler(config, steps, karras, false);
            case "dpm2_a" -> new KDpm2Scheduler(config, steps, karras, true);
            case "tcd" -> new TcdScheduler(config, steps, eta);
            case "deis" -> new DeisMultistepScheduler(config, steps, karras);
            case "dpmpp_2m_sde" -> new DpmSolverMultistepScheduler(config, steps, karras, true);
            case "dpmpp_2m_sde_karras" -> new DpmSolverMultistepScheduler(config, steps, true, true);
            case "dpm_singlestep" -> new DpmSolverSinglestepScheduler(config, steps, karras);
            case "dpm_singlestep_karras" -> new DpmSolverSinglestepScheduler(config, steps, true);
            default -> throw new IllegalStateException("requireKnown let " + name.length() + " characters through");
        };
    }

    /** Schedulers whose timesteps follow the config's spacing with steps_offset added (diffusers' set_timesteps). */
    private static final java.util.Set<String> LEADING = java.util.Set.of("ddim", "ddpm", "pndm");

    public static void requireKnown(String name) {
        InvalidRequestException.require(name.isEmpty() || NAMES.contains(name),
                "scheduler: unknown \"%s\"; valid: %s", InvalidRequestException.shown(name), String.join(", ", NAMES));
    }
}
