package org.sdserve.denoise.app;

import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import java.util.List;
import org.sdserve.common.grpc.RunningStage;
import org.sdserve.denoise.core.Denoiser;
import org.sdserve.denoise.grpc.DenoiserService;

/** The denoiser-svc process: loads the UNet and scheduler config, then serves the loop over gRPC. */
@ApplicationScoped
public class DenoiserServer {
    @Inject
    DenoiserConfig config;
    private RunningStage stage;

    void start(@Observes StartupEvent event) {
        stage = RunningStage.start("denoiser", config,
                dir -> Denoiser.load(dir, config.execution(), config.noiseKernel(), config.batch().settings()),
                denoiser -> List.of(new DenoiserService(denoiser, config.progressInterval())));
    }

    void stop(@Observes ShutdownEvent event) {
        if (stage != null) {
            stage.close();
        }
    }
}
