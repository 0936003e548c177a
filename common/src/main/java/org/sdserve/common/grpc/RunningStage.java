package org.sdserve.common.grpc;

import io.grpc.BindableService;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Metrics;
import java.lang.System.Logger.Level;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Function;
import org.sdserve.common.config.StageSettings;
import org.sdserve.common.model.ModelDirectory;

/**
 * A stage service process's life: load and check the model core, serve it on the configured port, say
 * SERVING; on close, NOT_SERVING, drain, close the server, then the core (its ONNX sessions).
 */
public final class RunningStage implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(RunningStage.class.getName());
    private final AutoCloseable core;
    private final ServiceHost host;

    private RunningStage(AutoCloseable core, ServiceHost host) {
        this.core = core;
        this.host = host;
    }

    public static <C extends AutoCloseable> RunningStage start(String stage, StageSettings settings,
                                                               Function<ModelDirectory, C> load,
                                                               Function<C, List<BindableService>> services) {
        long t0 = System.nanoTime();
        ModelDirectory model = ModelDirectory.open(Path.of(settings.modelDir()));
        C core = load.apply(model);
        try {
            ServiceHost host = ServiceHost.tcp(settings.host(), settings.port(), settings.maxMessageBytes(),
                    settings.maxConnectionAge(), settings.tls(), services.apply(core));
            host.serving();
            // 1 while this process serves its model: a process without the series is not up (or not a stage)
            Gauge.builder("sd.model.loaded", host, h -> h.notServingReason() == null ? 1 : 0)
                    .description("1 while the stage serves its model").tag("stage", stage)
                    .tag("model", model.root().getFileName().toString()).register(Metrics.globalRegistry);
            LOG.log(Level.INFO, "{0}: model {1} loaded and served on {2} in {3} ms", stage, model.root(),
                    host.where(), (System.nanoTime() - t0) / 1_000_000);
            return new RunningStage(core, host);
        } catch (RuntimeException e) {
            closeQuietly(core);
            throw e;
        }
    }

    public int port() {
        return host.port();
    }

    /** null while SERVING, else why not: the process's readiness. */
    public String notServingReason() {
        return host.notServingReason();
    }

    @Override
    public void close() {
        host.close();
        closeQuietly(core);
    }

    private static void closeQuietly(AutoCloseable c) {
        try {
            c.close();
        } catch (Exception e) {
            LOG.log(Level.WARNING, "closing " + c + " failed", e);
        }
    }
}
