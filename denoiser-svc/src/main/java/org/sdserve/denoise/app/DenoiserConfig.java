package org.sdserve.denoise.app;

import io.smallrye.config.ConfigMapping;
import org.sdserve.common.config.StageSettings;

/** {@code sd.denoiser.*}: model-dir, host, port (50052), device, threads, ... (see StageSettings). */
@ConfigMapping(prefix = "sd.denoiser")
public interface DenoiserConfig extends StageSettings {
}
