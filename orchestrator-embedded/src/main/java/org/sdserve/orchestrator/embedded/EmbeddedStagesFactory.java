package org.sdserve.orchestrator.embedded;

import io.micrometer.core.instrument.Metrics;
import java.nio.file.Path;
import org.sdserve.common.model.ModelDirectory;
import org.sdserve.denoise.app.DenoiserMetrics;
import org.sdserve.denoise.batch.BatchSettings;
import org.sdserve.orchestrator.app.LocalStages;
import org.sdserve.orchestrator.app.OrchestratorConfig;
import org.sdserve.orchestrator.grpc.StageClients;

/** Embedded mode for the orchestrator process (found by {@link LocalStages#factory()}): the model of model-dir. */
public final class EmbeddedStagesFactory implements LocalStages.Factory {
    @Override
    public LocalStages start(OrchestratorConfig config, StageClients.Timeouts timeouts) {
        EmbeddedStages stages = EmbeddedStages.start(ModelDirectory.open(Path.of(config.modelDir())),
                config.execution(), config.noiseKernel(), BatchSettings.DEFAULT,
                config.extractorDir().map(Path::of).orElse(null), config.maxMessageBytes(), timeouts);
        // the in-process denoiser's meters on the process's registry (Quarkus' Prometheus one joins the global)
        DenoiserMetrics.register(Metrics.globalRegistry, stages.denoiser());
        return stages;
    }
}
