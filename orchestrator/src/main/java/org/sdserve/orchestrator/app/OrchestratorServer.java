package org.sdserve.orchestrator.app;

import io.grpc.BindableService;
import io.grpc.ServerInterceptors;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import io.opentelemetry.api.OpenTelemetry;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.sdserve.common.trace.Tracing;
import org.sdserve.common.grpc.ServiceHost;
import org.sdserve.common.grpc.StageChannels;
import org.sdserve.common.grpc.Tls;
import org.sdserve.orchestrator.auth.GrpcAuth;
import org.sdserve.orchestrator.auth.Tokens;
import org.sdserve.orchestrator.core.EngineSettings;
import org.sdserve.orchestrator.core.Evaluator;
import org.sdserve.orchestrator.core.JobEngine;
import org.sdserve.orchestrator.core.Limits;
import org.sdserve.orchestrator.core.Stages;
import org.sdserve.orchestrator.grpc.DiffusionService;
import org.sdserve.orchestrator.grpc.StageClients;

/** The orchestrator process: the public Diffusion service over stages that are embedded or remote. */
@ApplicationScoped
public class OrchestratorServer {
    private static final System.Logger LOG = System.getLogger(OrchestratorServer.class.getName());
    @Inject
    OpenTelemetry openTelemetry; // Quarkus'; exports only with quarkus.otel.sdk.disabled=false
    @ConfigProperty(name = "quarkus.otel.sdk.disabled")
    boolean otelDisabled;
    @Inject
    OrchestratorConfig config;
    @Inject
    MeterRegistry registry;
    private LocalStages embedded;
    private StageClients clients;
    private volatile ServiceHost host;
    private volatile JobEngine engine;
    private volatile Evaluator evaluator;
    private volatile Tokens tokens;

    void start(@Observes StartupEvent event) {
        Tracing.use(openTelemetry, !otelDisabled); // before the servers and channels take its interceptors
        if (config.healthCheckInterval().isNegative() || config.healthCheckInterval().isZero()) {
            throw new IllegalArgumentException("sd.orchestrator.health-check-interval must be positive, got "
                    + config.healthCheckInterval());
        }
        StageClients.Timeouts timeouts = new StageClients.Timeouts(Duration.ofSeconds(10), Duration.ofSeconds(60),
                config.denoiseTimeout(), Duration.ofMinutes(2));
        Stages stages;
        if (config.embedded()) {
            embedded = LocalStages.factory().start(config, timeouts);
            stages = embedded.stages();
        } else {
            int max = config.maxMessageBytes();
            Optional<Tls> tls = Tls.of(config.stageTlsCert(), config.stageTlsKey(), config.stageTlsCa());
            clients = new StageClients(StageChannels.tcp("text-encoder", config.textEncoder(), max, tls),
                    StageChannels.tcp("denoiser", config.denoiser(), max, tls),
                    StageChannels.tcp("vae", config.vae(), max, tls), timeouts);
            LOG.log(System.Logger.Level.INFO, "stages: text-encoder {0}, denoiser {1}, vae {2}",
                    config.textEncoder(), config.denoiser(), config.vae());
            stages = clients;
        }
        engine = JobEngine.start(stages,
                new Limits(config.maxSide(), config.maxSteps(), config.maxImages(), config.maxPixels()),
                new EngineSettings(config.maxConcurrentJobs(), config.queueDepth(), config.detachGrace(),
                        config.retainFinished(), config.retainedJobs(), config.retainedBytes(),
                        config.checkpointInterval(), config.denoiseAttempts()));
        JobMetrics.register(registry, engine);
        tokens = config.tokensFile().map(f -> Tokens.load(Path.of(f))).orElse(null);
        evaluator = new Evaluator(engine, config.maxEvaluations(), config.maxEvaluationImages());
        BindableService diffusion = new DiffusionService(engine, evaluator);
        if (tokens != null) {
            BindableService open = diffusion;
            GrpcAuth auth = new GrpcAuth(tokens);
            diffusion = () -> ServerInterceptors.intercept(open, auth);
            LOG.log(System.Logger.Level.INFO, "the public API takes the {0} bearer token(s) of {1}", tokens.size(),
                    config.tokensFile().get());
        } else {
            LOG.log(System.Logger.Level.WARNING, "the public API takes every caller: no sd.orchestrator.tokens-file");
        }
        host = ServiceHost.tcp(config.host(), config.port(), config.maxMessageBytes(), config.maxConnectionAge(),
                config.tls(), List.of(diffusion));
        if (config.embedded()) {
            host.serving();
        } else {
            ServiceHost h = host; // SERVING while every stage has a serving replica
            clients.watchHealth(config.healthCheckInterval(), missing -> {
                if (missing == null) {
                    h.serving();
                } else {
                    h.notServing(missing);
                }
            });
        }
    }

    /** The bearer tokens the API takes; null = none asked for (every caller let in). */
    public Tokens tokens() {
        return tokens;
    }

    /** The job engine, for the HTTP adapter; UNAVAILABLE until start-up has built it. */
    public JobEngine engine() {
        JobEngine e = engine;
        if (e == null) {
            throw io.grpc.Status.UNAVAILABLE.withDescription("the orchestrator is starting").asRuntimeException();
        }
        return e;
    }

    /** The evaluation runs, for the HTTP adapter; UNAVAILABLE until start-up has built them. */
    public Evaluator evaluator() {
        Evaluator e = evaluator;
        if (e == null) {
            throw io.grpc.Status.UNAVAILABLE.withDescription("the orchestrator is starting").asRuntimeException();
        }
        return e;
    }

    /**
     * SIGTERM: NOT_SERVING, refuse new and waiting jobs, let running ones finish within drain-grace, stop. (Embedded
     * mode can drain because common's OrtRuntime takes ONNX Runtime's own shutdown hook out, which would free the
     * environment under a running session.)
     */
    void stop(@Observes ShutdownEvent event) {
        if (host != null) {
            host.notServing("draining: shutting down");
        }
        if (evaluator != null) {
            evaluator.close(); // its runs end CANCELLED; their jobs drain as any
        }
        if (engine != null) {
            engine.drain(config.drainGrace());
        }
        if (host != null) {
            host.close();
        }
        if (embedded != null) {
            embedded.close();
        } else if (clients != null) {
            clients.close();
        }
    }

    /** null while its gRPC health says SERVING (every stage has a serving replica; not draining), else why not. */
    String notServingReason() {
        ServiceHost h = host;
        return h == null ? "starting" : h.notServingReason();
    }
}
