package org.sdserve.orchestrator.app;

import java.util.ServiceLoader;
import org.sdserve.orchestrator.core.Stages;
import org.sdserve.orchestrator.grpc.StageClients;

/**
 * The three stages in this process (embedded mode). This module runs no model: the implementation comes from
 * orchestrator-embedded, found through {@link ServiceLoader}, so that the distributed orchestrator carries no
 * inference library.
 */
public interface LocalStages extends AutoCloseable {
    /** The stages, ready to call. */
    Stages stages();

    @Override
    void close();

    /** Loads the model and starts the stages, as {@code config} says. */
    interface Factory {
        LocalStages start(OrchestratorConfig config, StageClients.Timeouts timeouts);
    }

    /** The factory on the class path, or an error that says what to run instead. */
    static Factory factory() {
        return ServiceLoader.load(Factory.class).findFirst().orElseThrow(() -> new IllegalStateException(
                "sd.orchestrator.embedded=true, but this is the distributed orchestrator (no stages inside): run "
                        + "orchestrator-embedded (image sdserve/demo) for one process, or set "
                        + "SD_ORCHESTRATOR_EMBEDDED=false and the stage addresses"));
    }
}
