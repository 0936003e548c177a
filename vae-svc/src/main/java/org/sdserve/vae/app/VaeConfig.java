package org.sdserve.vae.app;

import io.smallrye.config.ConfigMapping;
import java.util.Optional;
import org.sdserve.common.config.StageSettings;

/** {@code sd.vae.*}: model-dir, host, port (50053), device, threads, ... (see StageSettings), extractor-dir. */
@ConfigMapping(prefix = "sd.vae")
public interface VaeConfig extends StageSettings {
    /**
     * A feature extractor for the quality measures (Diffusion.Evaluate), served as the Features service beside the
     * VAE: an ONNX graph and its config.json (models/scene-features for the demo model; Inception-v3's pool3 for
     * real ones, README "Quality measures"). Unset = no Features service (Evaluate answers FAILED_PRECONDITION).
     */
    Optional<String> extractorDir();
}
