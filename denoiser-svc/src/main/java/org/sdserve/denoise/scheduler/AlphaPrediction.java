package org.sdserve.denoise.scheduler;

/**
 * The clean-sample estimate x0 of the alpha-space schedulers (DDIM, DDPM, LCM) from the model output at a timestep
 * with cumulative alpha a_t, by prediction_type: epsilon x0 = (x - sqrt(1 - a_t) e) / sqrt(a_t);
 * v_prediction x0 = sqrt(a_t) x - sqrt(1 - a_t) v; sample x0 = the output.
 */
final class AlphaPrediction {
    private AlphaPrediction() {
    }

    static double x0(String predictionType, double x, double out, double alphaT) {
        return switch (predictionType) {
            case "epsilon" -> (x - Math.sqrt(1 - alphaT) * out) / Math.sqrt(alphaT);
            case "v_prediction" -> Math.sqrt(alphaT) * x - Math.sqrt(1 - alphaT) * out;
            default -> out;
        };
    }
}
