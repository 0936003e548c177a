package org.sdserve.text.app;

import io.smallrye.config.ConfigMapping;
import org.sdserve.common.config.StageSettings;

/** {@code sd.text-encoder.*}: model-dir, host, port (50051), device, threads, ... (see StageSettings). */
@ConfigMapping(prefix = "sd.text-encoder")
public interface TextEncoderConfig extends StageSettings {
}
