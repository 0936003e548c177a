package org.sdserve.vae.app;

import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import java.util.List;
import org.sdserve.common.grpc.RunningStage;
import org.sdserve.vae.core.Vae;
import org.sdserve.vae.grpc.VaeService;

/** The vae-svc process: loads the VAE decoder (and encoder), then serves them over gRPC. */
@ApplicationScoped
public class VaeServer {
    @Inject
    VaeConfig config;
    private RunningStage stage;

    void start(@Observes StartupEvent event) {
        stage = RunningStage.start("vae", config, dir -> Vae.load(dir, config.execution()),
                vae -> List.of(new VaeService(vae, config.noiseKernel())));
    }

    void stop(@Observes ShutdownEvent event) {
        if (stage != null) {
            stage.close();
        }
    }
}
