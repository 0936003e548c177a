package org.sdserve.vae.app;

import io.smallrye.config.ConfigMapping;
import org.sdserve.common.config.StageSettings;

/** {@code sd.vae.*}: model-dir, host, port (50053), device, threads, ... (see StageSettings). */
@ConfigMapping(prefix = "sd.vae")
public interface VaeConfig extends StageSettings {
}
