package org.sdserve.denoise.grpc;

import com.google.protobuf.ByteString;
import io.grpc.Context;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.trace.Span;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.denoise.core.Checkpoint;
import org.sdserve.denoise.scheduler.Scheduler;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;
import org.sdserve.denoise.batch.BatchSettings;
import org.sdserve.proto.v1.Batching;
import org.sdserve.common.grpc.Calls;
import org.sdserve.common.grpc.GrpcErrors;
import org.sdserve.common.grpc.JobIds;
import org.sdserve.common.tensor.FloatTensor;
import org.sdserve.common.tensor.TensorCodec;
import org.sdserve.denoise.core.DenoiseJob;
import org.sdserve.denoise.core.Denoiser;
import org.sdserve.denoise.core.ModelGeometry;
import org.sdserve.denoise.core.StepListener;
import org.sdserve.denoise.scheduler.Schedulers;
import org.sdserve.proto.v1.DenoiseEvent;
import org.sdserve.proto.v1.DenoiseRequest;
import org.sdserve.proto.v1.DenoiserGrpc;
import org.sdserve.proto.v1.DescribeRequest;
import org.sdserve.proto.v1.Latents;
import org.sdserve.proto.v1.ModelDescription;
import org.sdserve.proto.v1.StepProgress;

/**
 * gRPC adapter of {@link Denoiser}: progress events (every step, or every step that ends at least
 * {@code progressInterval} after the last one sent), the latents last; cancellation between steps.
 */
public final class DenoiserService extends DenoiserGrpc.DenoiserImplBase {
    private static final System.Logger LOG = System.getLogger(DenoiserService.class.getName());
    private static final AttributeKey<Long> STEP = AttributeKey.longKey("sd.step");
    private static final AttributeKey<Double> TIMESTEP = AttributeKey.doubleKey("sd.timestep");
    private static final AttributeKey<Long> IMAGES = AttributeKey.longKey("sd.images");
    private static final AttributeKey<Long> STEPS = AttributeKey.longKey("sd.steps");
    private static final AttributeKey<String> SCHEDULER = AttributeKey.stringKey("sd.scheduler");
    private final Denoiser denoiser;
    private final long progressIntervalNanos;

    /** A progress event for every step (in-process callers, where an event costs nothing measurable). */
    public DenoiserService(Denoiser denoiser) {
        this(denoiser, Duration.ZERO);
    }

    /**
     * @param progressInterval steps that end sooner than this after the last event sent are folded into the next
     *     one (the first and last steps, and steps with previews, are always sent): across processes each event
     *     costs the denoiser time (on the demo model about 0.8 ms of a 5 ms step on 2 cores)
     */
    public DenoiserService(Denoiser denoiser, Duration progressInterval) {
        if (progressInterval.isNegative()) {
            throw new IllegalArgumentException("progress-interval must be >= 0, got " + progressInterval);
        }
        this.denoiser = denoiser;
        this.progressIntervalNanos = progressInterval.toNanos();
    }

    /**
     * Starts the job and returns: its steps run on the denoiser's batcher (or, with batching off, here), each
     * reported as it ends; the latents come last. A cancelled call stops its job before its next step.
     */
    @Override
    public void denoise(DenoiseRequest request, StreamObserver<DenoiseEvent> out) {
        ServerCallStreamObserver<DenoiseEvent> call = (ServerCallStreamObserver<DenoiseEvent>) out;
        Context context = Context.current(); // the caller's deadline and cancellation, seen from any thread
        String jobPrefix = JobIds.logPrefix(); // "job ID: " when the orchestrator sent one
        Span span = Span.current(); // this call's server span (Tracing): each step becomes one of its events
        call.setOnCancelHandler(() -> { }); // later sends are dropped instead of thrown; the run sees cancelled()
        long t0 = System.nanoTime();
        AtomicInteger done = new AtomicInteger();
        long[] lastSent = {0}; // nanoTime of the last progress sent; 0 = none yet (steps run one at a time)
        DenoiseJob job;
        CompletableFuture<FloatTensor> result;
        try {
            job = toJob(request);
            span.setAttribute(IMAGES, job.seeds().length);
            span.setAttribute(STEPS, job.steps());
            span.setAttribute(SCHEDULER, job.scheduler());
            result = denoiser.submit(job, new StepListener() {
                @Override
                public void onStep(int step, int total, double timestep, List<byte[]> previews) {
                    done.set(step);
                    long now = System.nanoTime();
                    span.addEvent("step", Attributes.of(STEP, (long) step, TIMESTEP, timestep));
                    if (step < total && previews.isEmpty() && lastSent[0] != 0
                            && now - lastSent[0] < progressIntervalNanos) {
                        return; // folded into the next event
                    }
                    lastSent[0] = now;
                    StepProgress.Builder p = StepProgress.newBuilder().setStep(step).setTotalSteps(total)
                            .setTimestep((float) timestep).setElapsedMs((now - t0) / 1_000_000);
                    previews.forEach(png -> p.addPreviewPng(ByteString.copyFrom(png)));
                    call.onNext(DenoiseEvent.newBuilder().setProgress(p).build());
                }

                @Override
                public void onCheckpoint(Checkpoint c) {
                    call.onNext(DenoiseEvent.newBuilder().setCheckpoint(toProto(c)).build());
                }

                @Override
                public boolean cancelled() {
                    return call.isCancelled() || context.isCancelled();
                }
            });
        } catch (Throwable t) {
            out.onError(GrpcErrors.toException(t));
            return;
        }
        result.whenComplete((latents, error) -> {
            if (error != null) {
                Throwable t = error instanceof java.util.concurrent.CompletionException c ? c.getCause() : error;
                if (call.isCancelled() || context.isCancelled()) {
                    LOG.log(System.Logger.Level.INFO, "{0}denoise cancelled by the caller after step {1}", jobPrefix,
                            done.get());
                } else {
                    out.onError(GrpcErrors.toException(t));
                }
                return;
            }
            out.onNext(DenoiseEvent.newBuilder()
                    .setLatents(Latents.newBuilder().setLatents(TensorCodec.encode(latents))).build());
            out.onCompleted();
            LOG.log(System.Logger.Level.INFO, "{0}denoised {1} image(s), {2} steps of {3}, in {4} ms", jobPrefix,
                    job.seeds().length, done.get() - job.startStep(), job.scheduler(),
                    (System.nanoTime() - t0) / 1_000_000);
        });
    }

    @Override
    public void describe(DescribeRequest request, StreamObserver<ModelDescription> out) {
        Calls.unary(out, () -> {
            ModelGeometry g = denoiser.geometry();
            return ModelDescription.newBuilder().setModel(denoiser.modelName())
                    .setDefaultWidth(g.defaultWidth()).setDefaultHeight(g.defaultHeight())
                    .setSizeMultiple(g.sizeMultiple()).setVaeFactor(g.vaeFactor())
                    .setLatentChannels(denoiser.unet().latentChannels())
                    .setContextWidth(Math.max(0, denoiser.unet().contextWidth()))
                    .addAllSchedulers(Schedulers.NAMES).setDefaultScheduler(Schedulers.DEFAULT)
                    .setBatching(batching()).setMemoryBudgetBytes(denoiser.memory().budget())
                    .setActivationBytesPerTokenPair(denoiser.memory().cost().map(c -> c.perTokenPair()
                            * org.sdserve.denoise.core.MemoryBudget.MARGIN).orElse(0.0))
                    .setActivationBytesPerToken(denoiser.memory().cost().map(c -> c.perToken()
                            * org.sdserve.denoise.core.MemoryBudget.MARGIN).orElse(0.0))
                    .setInpainting(denoiser.unet().inpaints()).build();
        });
    }

    private Batching batching() {
        BatchSettings b = denoiser.batchSettings();
        Batching.Builder out = Batching.newBuilder().setEnabled(b.enabled()).setMaxRows(b.enabled() ? b.maxRows() : 0)
                .setPerRowTimestep(denoiser.unet().perRowTimestep()).setWindowUs(b.window().toNanos() / 1000);
        denoiser.batcher().ifPresent(s -> out.setUnetCalls(s.calls()).setUnetRows(s.rows())
                .setRowsInFlight(s.rowsInFlight()));
        return out.build();
    }

    static DenoiseJob toJob(DenoiseRequest r) {
        FloatTensor prompt = r.hasPromptEmbeds() ? TensorCodec.decode(r.getPromptEmbeds(), "prompt_embeds") : null;
        FloatTensor negative = r.hasNegativeEmbeds()
                ? TensorCodec.decode(r.getNegativeEmbeds(), "negative_embeds") : null;
        FloatTensor init = r.hasInitLatents() ? TensorCodec.decode(r.getInitLatents(), "init_latents") : null;
        long[] seeds = r.getSeedsList().stream().mapToLong(Long::longValue).toArray();
        InvalidRequestException.require(r.getCheckpointInterval() >= 0, "checkpoint_interval must be at most %d, "
                + "got %s", Integer.MAX_VALUE, Integer.toUnsignedString(r.getCheckpointInterval()));
        DenoiseJob.ImageToImage i2i = null;
        if (r.hasImageLatents()) {
            i2i = new DenoiseJob.ImageToImage(TensorCodec.decode(r.getImageLatents(), "image_latents"),
                    r.getStrength(), r.hasMask() ? TensorCodec.decode(r.getMask(), "mask") : null,
                    r.hasMaskedImageLatents() ? TensorCodec.decode(r.getMaskedImageLatents(), "masked_image_latents")
                            : null);
        } else {
            InvalidRequestException.require(r.getStrength() == 0 && !r.hasMask() && !r.hasMaskedImageLatents(),
                    "strength, mask and masked_image_latents go with image_latents, which are unset");
        }
        return new DenoiseJob(prompt, negative, r.getWidth(), r.getHeight(), r.getSteps(), r.getGuidanceScale(),
                r.getScheduler(), seeds, r.getPreviewInterval(), r.getEta(), init, r.getStartStep(), r.getEndStep(),
                r.hasResume() ? fromProto(r.getResume()) : null, r.getCheckpointInterval(), i2i);
    }

    /** Most arrays one history entry may hold (PNDM and LMS keep four). */
    private static final int MAX_HISTORY_ARRAYS = 8;

    static org.sdserve.proto.v1.Checkpoint toProto(Checkpoint c) {
        org.sdserve.proto.v1.Checkpoint.Builder b = org.sdserve.proto.v1.Checkpoint.newBuilder().setStep(c.step())
                .setLatents(TensorCodec.encode(c.latents())).setNoiseDraws(c.noiseDraws());
        c.history().arrays().forEach((name, arrays) -> {
            int n = arrays.get(0).length;
            float[] stacked = new float[arrays.size() * n]; // [count, B*C*h*w]
            for (int i = 0; i < arrays.size(); i++) {
                System.arraycopy(arrays.get(i), 0, stacked, i * n, n);
            }
            b.putSchedulerHistory(name, TensorCodec.encode(new FloatTensor(new long[] {arrays.size(), n}, stacked)));
        });
        return b.build();
    }

    static Checkpoint fromProto(org.sdserve.proto.v1.Checkpoint c) {
        Map<String, List<float[]>> history = new LinkedHashMap<>();
        c.getSchedulerHistoryMap().forEach((name, tensor) -> {
            String field = "resume.scheduler_history[\"" + InvalidRequestException.shown(name) + "\"]";
            FloatTensor t = TensorCodec.decode(tensor, field);
            InvalidRequestException.require(t.rank() == 2 && t.dim(0) >= 1 && t.dim(0) <= MAX_HISTORY_ARRAYS,
                    "%s must be [1 to %d arrays, values], got %s", field, MAX_HISTORY_ARRAYS,
                    Arrays.toString(t.shape()));
            List<float[]> arrays = new ArrayList<>();
            int n = t.dim(1);
            for (int i = 0; i < t.dim(0); i++) {
                arrays.add(Arrays.copyOfRange(t.data(), i * n, (i + 1) * n));
            }
            history.put(name, arrays);
        });
        InvalidRequestException.require(c.getStep() >= 0 && c.getNoiseDraws() >= 0,
                "resume.step and resume.noise_draws are out of range");
        return new Checkpoint(c.getStep(), c.hasLatents() ? TensorCodec.decode(c.getLatents(), "resume.latents")
                : null, new Scheduler.History(Map.copyOf(history)), c.getNoiseDraws());
    }
}
