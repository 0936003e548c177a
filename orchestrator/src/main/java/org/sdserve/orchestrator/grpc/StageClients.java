package org.sdserve.orchestrator.grpc;

import io.grpc.Channel;
import io.grpc.Context;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.sdserve.common.grpc.StageChannels;
import org.sdserve.orchestrator.core.Stages;
import org.sdserve.proto.v1.DecodeRequest;
import org.sdserve.proto.v1.DecodeResponse;
import org.sdserve.proto.v1.DenoiseEvent;
import org.sdserve.proto.v1.DenoiseRequest;
import org.sdserve.proto.v1.DenoiserGrpc;
import org.sdserve.proto.v1.DescribeExtractorRequest;
import org.sdserve.proto.v1.DescribeRequest;
import org.sdserve.proto.v1.EncodeRequest;
import org.sdserve.proto.v1.EncodeResponse;
import org.sdserve.proto.v1.ExtractRequest;
import org.sdserve.proto.v1.ExtractResponse;
import org.sdserve.proto.v1.ExtractorDescription;
import org.sdserve.proto.v1.FeaturesGrpc;
import org.sdserve.proto.v1.ModelDescription;
import org.sdserve.proto.v1.ReferenceFeaturesChunk;
import org.sdserve.proto.v1.ReferenceFeaturesRequest;
import org.sdserve.proto.v1.TextEncoderGrpc;
import org.sdserve.proto.v1.VaeEncodeRequest;
import org.sdserve.proto.v1.VaeEncodeResponse;
import org.sdserve.proto.v1.VaeGrpc;

/**
 * The three stages over gRPC, each call on the next replica and with its own deadline; the caller's
 * deadline and cancellation also apply, through the gRPC Context the call is made in.
 */
public final class StageClients implements Stages, AutoCloseable {
    private static final System.Logger LOG = System.getLogger(StageClients.class.getName());
    private final StageChannels text;
    private final StageChannels denoiser;
    private final StageChannels vae;
    private final Timeouts timeouts;

    /** Per-stage call limits; the effective deadline is the earlier of these and the caller's. */
    public record Timeouts(Duration describe, Duration encode, Duration denoise, Duration decode) {
        public static final Timeouts DEFAULT = new Timeouts(Duration.ofSeconds(10), Duration.ofSeconds(60),
                Duration.ofMinutes(30), Duration.ofMinutes(2));
    }

    public StageClients(StageChannels text, StageChannels denoiser, StageChannels vae, Timeouts timeouts) {
        this.text = text;
        this.denoiser = denoiser;
        this.vae = vae;
        this.timeouts = timeouts;
    }

    @Override
    public EncodeResponse encode(EncodeRequest request) {
        return failover(text, ch -> TextEncoderGrpc.newBlockingStub(ch)
                .withDeadlineAfter(timeouts.encode().toMillis(), TimeUnit.MILLISECONDS).encode(request));
    }

    /**
     * The denoiser's events, on the next replica. A stream that fails with UNAVAILABLE, before its first event or
     * after, is made again by the job (Pipeline), from its last checkpoint: one retry mechanism for this call.
     */
    @Override
    public Iterator<DenoiseEvent> denoise(DenoiseRequest request) {
        return DenoiserGrpc.newBlockingStub(denoiser.next())
                .withDeadlineAfter(timeouts.denoise().toMillis(), TimeUnit.MILLISECONDS).denoise(request);
    }

    @Override
    public DecodeResponse decode(DecodeRequest request) {
        return failover(vae, ch -> VaeGrpc.newBlockingStub(ch)
                .withDeadlineAfter(timeouts.decode().toMillis(), TimeUnit.MILLISECONDS).decode(request));
    }

    @Override
    public VaeEncodeResponse encodeImage(VaeEncodeRequest request) {
        return failover(vae, ch -> VaeGrpc.newBlockingStub(ch)
                .withDeadlineAfter(timeouts.decode().toMillis(), TimeUnit.MILLISECONDS).encode(request));
    }

    @Override
    public ExtractResponse extractFeatures(ExtractRequest request) {
        return withExtractor(() -> failover(vae, ch -> FeaturesGrpc.newBlockingStub(ch)
                .withDeadlineAfter(timeouts.decode().toMillis(), TimeUnit.MILLISECONDS).extract(request)));
    }

    @Override
    public ExtractorDescription describeExtractor() {
        return withExtractor(() -> failover(vae, ch -> FeaturesGrpc.newBlockingStub(ch)
                .withDeadlineAfter(timeouts.decode().toMillis(), TimeUnit.MILLISECONDS)
                .describeExtractor(DescribeExtractorRequest.getDefaultInstance())));
    }

    /** One replica's stream of the reference set (no failover mid-stream: the evaluation fails with its status). */
    @Override
    public Iterator<ReferenceFeaturesChunk> referenceFeatures() {
        Iterator<ReferenceFeaturesChunk> chunks = FeaturesGrpc.newBlockingStub(vae.next())
                .withDeadlineAfter(timeouts.decode().toMillis(), TimeUnit.MILLISECONDS)
                .referenceFeatures(ReferenceFeaturesRequest.getDefaultInstance());
        return new Iterator<>() { // (a replica without the service answers when the stream is first read)
            @Override
            public boolean hasNext() {
                return withExtractor(chunks::hasNext);
            }

            @Override
            public ReferenceFeaturesChunk next() {
                return withExtractor(chunks::next);
            }
        };
    }

    /** A Features call; a VAE replica without the service (no extractor configured) is a precondition to fix. */
    private static <T> T withExtractor(Supplier<T> call) {
        try {
            return call.get();
        } catch (StatusRuntimeException e) {
            if (e.getStatus().getCode() == Status.Code.UNIMPLEMENTED) {
                throw Status.FAILED_PRECONDITION.withDescription("the VAE stage serves no feature extractor: start it "
                        + "with sd.vae.extractor-dir (SD_VAE_EXTRACTOR_DIR), e.g. models/scene-features for the demo "
                        + "model").asRuntimeException();
            }
            throw e;
        }
    }

    /**
     * A unary call on the next replica, made again on the following one when it fails with UNAVAILABLE (the
     * failed replica leaves the rotation at once: {@link StageChannels}), up to the stage's attempts, within the
     * caller's deadline.
     */
    private static <T> T failover(StageChannels stage, Function<Channel, T> call) {
        return failover(stage, stage::next, call);
    }

    /** The same, on the channels {@code pick} gives (the light rotation for metadata calls). */
    private static <T> T failover(StageChannels stage, Supplier<Channel> pick, Function<Channel, T> call) {
        for (int attempt = 1; ; attempt++) {
            try {
                return call.apply(pick.get());
            } catch (StatusRuntimeException e) {
                if (!retryable(e) || attempt >= stage.attempts()) {
                    throw e;
                }
                LOG.log(System.Logger.Level.INFO, "{0} call made again on the next replica after: {1}", stage.stage(),
                        e.getStatus().getDescription());
            }
        }
    }

    /** UNAVAILABLE from a replica, while the caller still wants the answer. */
    private static boolean retryable(StatusRuntimeException e) {
        return e.getStatus().getCode() == Status.Code.UNAVAILABLE && !Context.current().isCancelled();
    }

    /**
     * What the denoiser replicas serve, asked at most every {@link #DESCRIBE_TTL_NANOS} (a round trip saved per
     * job; replicas of a stage serve the same model, and a changed one is seen within the TTL).
     */
    @Override
    public ModelDescription description() {
        Cached c = described;
        if (c == null || System.nanoTime() - c.at() > DESCRIBE_TTL_NANOS) {
            ModelDescription d = failover(denoiser, denoiser::nextLight, ch -> DenoiserGrpc.newBlockingStub(ch)
                    .withDeadlineAfter(timeouts.describe().toMillis(), TimeUnit.MILLISECONDS)
                    .describe(DescribeRequest.getDefaultInstance()));
            c = new Cached(d, System.nanoTime());
            described = c;
        }
        return c.description();
    }

    private static final long DESCRIBE_TTL_NANOS = TimeUnit.SECONDS.toNanos(10);

    private record Cached(ModelDescription description, long at) {
    }

    private volatile Cached described;

    /**
     * Distributed mode: checks every replica's health each {@code period}; calls skip replicas that are not
     * serving, and {@code listener} hears, after each change, null when every stage has a serving replica or
     * else which stages have none and why.
     */
    public void watchHealth(Duration period, Consumer<String> listener) {
        ScheduledExecutorService s = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "stage-health");
            t.setDaemon(true);
            return t;
        });
        healthChecks = s;
        Runnable changed = () -> {
            synchronized (this) { // callbacks come from several threads: report the latest state last
                listener.accept(unavailable());
            }
        };
        for (StageChannels c : List.of(text, denoiser, vae)) {
            c.watchHealth(s, period, changed);
        }
    }

    private volatile ScheduledExecutorService healthChecks;

    /**
     * null when each stage has a replica whose last health check said SERVING (or when health is not watched:
     * embedded mode), else what is missing.
     */
    @Override
    public String unavailable() {
        if (healthChecks == null) {
            return null;
        }
        String missing = Stream.of(text, denoiser, vae).filter(c -> !c.serving())
                .map(c -> c.stage() + " has no serving replica (" + c.describe() + ")")
                .collect(Collectors.joining("; "));
        return missing.isEmpty() ? null : missing;
    }

    @Override
    public void close() {
        if (healthChecks != null) {
            healthChecks.shutdownNow();
        }
        text.close();
        denoiser.close();
        vae.close();
    }
}
