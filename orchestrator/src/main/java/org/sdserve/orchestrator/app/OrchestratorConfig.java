package org.sdserve.orchestrator.app;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.time.Duration;
import java.util.List;
import org.sdserve.common.config.StageSettings;

/**
 * {@code sd.orchestrator.*}. Distributed mode (this module's default) calls the stage addresses, round-robin over
 * replicas; embedded mode (orchestrator-embedded's default) runs the three stages in this process and uses
 * model-dir, device and threads.
 */
@ConfigMapping(prefix = "sd.orchestrator")
public interface OrchestratorConfig extends StageSettings {
    /** true: the stages in this process (needs orchestrator-embedded, whose application sets it); false: remote. */
    @WithDefault("false")
    boolean embedded();

    /**
     * Port of the HTTP API (/v1), the web page (/) and the OpenAPI document (/q/openapi), on {@link #host()};
     * Quarkus' HTTP server reads it (quarkus.http.port in application.properties).
     */
    @WithDefault("8080")
    int httpPort();

    /**
     * Bearer tokens of the public API (gRPC and HTTP), one per line (auth.Tokens says the format); unset = every
     * caller is let in (and a warning says so at start-up).
     */
    java.util.Optional<String> tokensFile();

    /** TLS to the stages (distributed mode): the CA their certificates chain to; unset with the other two = plaintext. */
    java.util.Optional<String> stageTlsCa();

    /** With the stages' tls-client-ca: the orchestrator's client certificate (PEM) for mutual TLS; with key. */
    java.util.Optional<String> stageTlsCert();

    java.util.Optional<String> stageTlsKey();

    /** host:port of each text-encoder-svc replica (distributed mode). */
    @WithDefault("localhost:50051")
    List<String> textEncoder();

    @WithDefault("localhost:50052")
    List<String> denoiser();

    @WithDefault("localhost:50053")
    List<String> vae();

    /** Jobs running at once; more wait in the queue. */
    @WithDefault("4")
    int maxConcurrentJobs();

    /** Jobs that may wait for a running slot, in arrival order; a job beyond them gets RESOURCE_EXHAUSTED. */
    @WithDefault("64")
    int queueDepth();

    /**
     * How long a job goes on once no stream follows it (its client may re-attach with Watch meanwhile); 0 stops it
     * as soon as its last stream goes.
     */
    @WithDefault("PT10S")
    Duration detachGrace();

    /**
     * At shutdown (SIGTERM): how long running jobs may take to finish; new and waiting jobs are refused with
     * UNAVAILABLE at once. Keep it under the pod's terminationGracePeriodSeconds (60 in deploy/k8s).
     */
    @WithDefault("PT45S")
    Duration drainGrace();

    /** How long a finished job (its images and its end) can still be watched. */
    @WithDefault("PT2M")
    Duration retainFinished();

    /** Most finished jobs kept for Watch. */
    @WithDefault("256")
    int retainedJobs();

    /** Most PNG bytes the finished jobs kept may hold, all together (the oldest go first). */
    @WithDefault("268435456")
    long retainedBytes();

    @WithDefault("2048")
    int maxSide();

    @WithDefault("200")
    int maxSteps();

    @WithDefault("8")
    int maxImages();

    /** Most pixels per request, all images together. */
    @WithDefault("4194304")
    long maxPixels();

    /** Evaluate runs at once; another is refused with RESOURCE_EXHAUSTED. */
    @WithDefault("1")
    int maxEvaluations();

    /**
     * Most images per Evaluate run. A run holds its images' features and the reference set's as doubles (2 x 8 x
     * 2048 x 2048 bytes, 64 MiB, at 2048 Inception images against as many real ones) and distance blocks of 256 rows;
     * the measures' time grows as n x the reference count (and its square once, on the first run against a set).
     */
    @WithDefault("2048")
    int maxEvaluationImages();

    /**
     * Embedded mode: a feature extractor for Evaluate, served by the in-process VAE stage (as sd.vae.extractor-dir
     * in vae-svc; models/scene-features for the demo model). Unset = none.
     */
    java.util.Optional<String> extractorDir();

    /**
     * Distributed mode: how often each stage replica's grpc.health.v1 is checked. Replicas that fail are skipped;
     * the orchestrator reports SERVING only while every stage has a serving replica.
     */
    @WithDefault("PT2S")
    Duration healthCheckInterval();

    /**
     * The denoiser streams a checkpoint of each job (latents, scheduler history, noise position) every this many
     * UNet calls; when a Denoise stream breaks (its replica died or was drained), the job continues on another
     * replica from its last checkpoint and ends with the same image. 0 = no checkpoints (a broken job starts its
     * denoising over, still with the same image).
     */
    @WithDefault("5")
    int checkpointInterval();

    /** Most Denoise calls one job may make: the first, then one per broken stream. */
    @WithDefault("4")
    int denoiseAttempts();

    /** Limit of one Denoise call (the caller's deadline applies too). */
    @WithDefault("PT30M")
    Duration denoiseTimeout();
}
