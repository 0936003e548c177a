package org.sdserve.orchestrator.grpc;

import io.grpc.Context;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.Iterator;
import java.util.List;
import java.util.UUID;
import java.util.ArrayList;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.common.grpc.GrpcErrors;
import org.sdserve.common.tensor.FloatTensor;
import org.sdserve.common.tensor.TensorCodec;
import org.sdserve.orchestrator.core.RequestValidator;
import org.sdserve.proto.v1.Accepted;
import org.sdserve.proto.v1.CancelRequest;
import org.sdserve.proto.v1.CancelResponse;
import org.sdserve.proto.v1.JobInfo;
import org.sdserve.proto.v1.JobState;
import org.sdserve.proto.v1.ListJobsRequest;
import org.sdserve.proto.v1.ListJobsResponse;
import org.sdserve.common.grpc.Calls;
import org.sdserve.proto.v1.Completed;
import org.sdserve.proto.v1.DecodeRequest;
import org.sdserve.proto.v1.DecodeResponse;
import org.sdserve.proto.v1.DenoiseEvent;
import org.sdserve.proto.v1.DenoiseRequest;
import org.sdserve.proto.v1.DiffusionGrpc;
import org.sdserve.proto.v1.EncodeRequest;
import org.sdserve.proto.v1.EncodeResponse;
import org.sdserve.proto.v1.GenerateEvent;
import org.sdserve.proto.v1.GenerateRequest;
import org.sdserve.proto.v1.Image;
import org.sdserve.proto.v1.ModelDescription;
import org.sdserve.proto.v1.Preview;
import org.sdserve.proto.v1.Priority;
import org.sdserve.proto.v1.Progress;
import org.sdserve.proto.v1.Queued;
import org.sdserve.proto.v1.Stage;
import org.sdserve.proto.v1.StepProgress;

/**
 * The public Diffusion service: validate, encode the prompts, denoise (relaying each step), decode, stream the
 * images. Stage calls run in the caller's gRPC Context, so a cancelled or expired client call cancels the
 * stage call in flight.
 */
public final class DiffusionService extends DiffusionGrpc.DiffusionImplBase {
    private static final System.Logger LOG = System.getLogger(DiffusionService.class.getName());
    /** Jobs waiting for a slot when none is given: enough for 16 clients' bursts, bounded all the same. */
    public static final int DEFAULT_QUEUE_DEPTH = 64;

    private final StageClients stages;
    private final RequestValidator validator;
    private final int maxJobs;
    private final int queueDepth;
    private final ExecutorService workers;
    private final Object lock = new Object();
    // guarded by lock: interactive jobs in arrival order, then batch jobs in arrival order
    private final List<Job> waiting = new ArrayList<>();
    private int running; // guarded by lock
    private final Map<String, Job> live = new ConcurrentHashMap<>(); // waiting and running jobs by id

    public DiffusionService(StageClients stages, RequestValidator validator, int maxConcurrentJobs) {
        this(stages, validator, maxConcurrentJobs, DEFAULT_QUEUE_DEPTH);
    }

    /**
     * @param maxConcurrentJobs jobs running at once, each on its own worker thread (never a transport thread)
     * @param queueDepth jobs that may wait for a slot, in arrival order; beyond it, RESOURCE_EXHAUSTED
     */
    public DiffusionService(StageClients stages, RequestValidator validator, int maxConcurrentJobs, int queueDepth) {
        if (maxConcurrentJobs < 1 || queueDepth < 0) {
            throw new IllegalArgumentException("max-concurrent-jobs must be >= 1 and queue-depth >= 0, got "
                    + maxConcurrentJobs + " and " + queueDepth);
        }
        this.stages = stages;
        this.validator = validator;
        this.maxJobs = maxConcurrentJobs;
        this.queueDepth = queueDepth;
        AtomicInteger n = new AtomicInteger();
        this.workers = Executors.newFixedThreadPool(maxConcurrentJobs, r -> {
            Thread t = new Thread(r, "job-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
    }

    /**
     * Validates the request and answers Accepted at once; the job then runs on a worker when a slot is free, or
     * waits in the queue (Queued events with its place) until one is. The job runs in the caller's gRPC Context,
     * so a cancelled or expired call cancels the stage call in flight, and a cancelled waiting job leaves the
     * queue.
     */
    @Override
    public void generate(GenerateRequest request, StreamObserver<GenerateEvent> observer) {
        ServerCallStreamObserver<GenerateEvent> out = (ServerCallStreamObserver<GenerateEvent>) observer;
        Job job = new Job(request, out, Context.current());
        try {
            job.accept();
        } catch (Throwable t) {
            out.onError(GrpcErrors.toException(t));
            return;
        }
        // both before the job can be seen by another thread (a finishing job may start it at once)
        out.setOnCancelHandler(() -> leaveQueue(job));
        live.put(job.id, job);
        boolean start;
        synchronized (lock) {
            start = running < maxJobs;
            if (start) {
                running++;
            } else if (waiting.size() < queueDepth) {
                enqueue(job);
            } else {
                live.remove(job.id);
                job.fail(Status.RESOURCE_EXHAUSTED.withDescription("queue full: " + waiting.size() + " jobs waiting "
                        + "and " + running + " running (sd.orchestrator.queue-depth, max-concurrent-jobs); retry later")
                        .asRuntimeException());
                return;
            }
        }
        if (start) {
            workers.execute(job::execute);
        }
    }

    private void leaveQueue(Job job) {
        synchronized (lock) {
            if (waiting.remove(job)) {
                live.remove(job.id);
                LOG.log(System.Logger.Level.INFO, "a waiting job was cancelled by its client");
                tellPositions();
            }
        }
    }

    /** Job ids are the UUIDs of Accepted; anything longer is not one (and is not echoed). */
    private static final int MAX_JOB_ID = 64;

    @Override
    public void cancel(CancelRequest request, StreamObserver<CancelResponse> out) {
        Calls.unary(out, () -> {
            String id = request.getJobId();
            InvalidRequestException.require(!id.isEmpty() && id.length() <= MAX_JOB_ID,
                    "job_id must be the id of an Accepted event (at most %d characters), got %d characters",
                    MAX_JOB_ID, id.length());
            Job job = live.get(id);
            if (job == null) {
                throw Status.NOT_FOUND.withDescription("no waiting or running job has id " + id
                        + " (it finished, or never existed)").asRuntimeException();
            }
            boolean wasWaiting;
            synchronized (lock) {
                wasWaiting = waiting.remove(job);
                if (wasWaiting) {
                    live.remove(job.id);
                    tellPositions();
                }
            }
            if (wasWaiting) {
                job.fail(Status.CANCELLED.withDescription("cancelled by Cancel while queued").asRuntimeException());
            } else {
                job.stop();
            }
            LOG.log(System.Logger.Level.INFO, "job {0} cancelled by Cancel while {1}", id,
                    wasWaiting ? "queued" : "running");
            return CancelResponse.newBuilder().setState(wasWaiting ? JobState.JOB_STATE_QUEUED
                    : JobState.JOB_STATE_RUNNING).build();
        });
    }

    private static final int MAX_LIST = 1000;

    @Override
    public void listJobs(ListJobsRequest request, StreamObserver<ListJobsResponse> out) {
        Calls.unary(out, () -> {
            InvalidRequestException.require(request.getLimit() <= MAX_LIST, "limit must be in [0, %d], got %d",
                    MAX_LIST, request.getLimit());
            int limit = request.getLimit() == 0 ? 100 : request.getLimit();
            List<Job> queue;
            synchronized (lock) {
                queue = List.copyOf(waiting);
            }
            List<Job> active = live.values().stream().filter(j -> j.startedAt != 0)
                    .sorted(java.util.Comparator.comparingLong(j -> j.startedAt)).toList();
            ListJobsResponse.Builder b = ListJobsResponse.newBuilder().setRunning(active.size())
                    .setWaiting(queue.size());
            for (Job j : active) {
                if (b.getJobsCount() < limit) {
                    b.addJobs(j.info(JobState.JOB_STATE_RUNNING, 0));
                }
            }
            for (int i = 0; i < queue.size() && b.getJobsCount() < limit; i++) {
                b.addJobs(queue.get(i).info(JobState.JOB_STATE_QUEUED, i + 1));
            }
            return b.build();
        });
    }

    /** Interactive jobs go behind the other interactive ones, ahead of every batch job. */
    private void enqueue(Job job) { // under lock
        int at = waiting.size();
        if (!job.batch()) {
            at = 0;
            while (at < waiting.size() && !waiting.get(at).batch()) {
                at++;
            }
        }
        waiting.add(at, job);
        tellPositions();
    }

    /** A job ended: the next waiting one takes its slot and the others move up. */
    private void finished() {
        Job next;
        synchronized (lock) {
            next = waiting.isEmpty() ? null : waiting.remove(0);
            if (next == null) {
                running--;
                return;
            }
            tellPositions();
        }
        workers.execute(next::execute);
    }

    private void tellPositions() { // under lock
        int i = 0;
        for (Job j : waiting) {
            j.queued(++i, waiting.size());
        }
    }

    /** One generation, in the order of diffusers' StableDiffusionPipeline.__call__. */
    private final class Job {
        private final GenerateRequest request;
        private final ServerCallStreamObserver<GenerateEvent> out;
        private final Context context; // the client call's: its deadline and cancellation
        private final Context.CancellableContext jobContext; // the stage calls': the client's, and Cancel by id
        private final String id = UUID.randomUUID().toString();
        private volatile boolean stoppedById;
        private volatile long startedAt; // System.nanoTime() when a worker took it; 0 while waiting
        private volatile Progress lastProgress;
        private final long t0 = System.nanoTime();
        private final Completed.Builder timings = Completed.newBuilder();
        private GenerateRequest resolved; // the request with its defaults, once accepted
        private long[] seeds;
        private int lastPosition; // guarded by this

        Job(GenerateRequest request, ServerCallStreamObserver<GenerateEvent> out, Context context) {
            this.request = request;
            this.out = out;
            this.context = context;
            this.jobContext = context.withCancellation();
        }

        /** Cancel by id of a running job: its stage call in flight is cancelled, the denoiser stops at its step. */
        void stop() {
            stoppedById = true;
            jobContext.cancel(null);
        }

        JobInfo info(JobState state, int position) {
            JobInfo.Builder b = JobInfo.newBuilder().setJobId(id).setState(state)
                    .setPriority(resolved.getPriority()).setPosition(position)
                    .setAgeMs(ms(t0));
            Progress p = lastProgress;
            if (p != null) {
                b.setStage(p.getStage()).setStep(p.getStep()).setTotalSteps(p.getTotalSteps());
            }
            return b.build();
        }

        boolean batch() {
            return resolved.getPriority() == Priority.PRIORITY_BATCH;
        }

        /** 1. validate against the served model, resolve defaults and seeds; Accepted. */
        void accept() {
            ModelDescription model = stages.description();
            resolved = validator.resolve(request, model);
            seeds = RequestValidator.seeds(resolved);
            Accepted.Builder accepted = Accepted.newBuilder().setJobId(id).setResolved(resolved);
            for (long s : seeds) {
                accepted.addSeeds(s);
            }
            send(GenerateEvent.newBuilder().setAccepted(accepted).build());
        }

        /** Tells the client its place, when it changed. */
        void queued(int position, int depth) {
            synchronized (this) {
                if (position != lastPosition && !out.isCancelled()) {
                    lastPosition = position;
                    out.onNext(GenerateEvent.newBuilder().setQueued(Queued.newBuilder().setPosition(position)
                            .setQueueDepth(depth)).build());
                }
            }
        }

        void fail(Throwable t) {
            synchronized (this) {
                out.onError(GrpcErrors.toException(t));
            }
        }

        /** On a worker: the job in the client call's Context, then the stream's end, then the slot is freed. */
        void execute() {
            Throwable failure = null;
            startedAt = System.nanoTime();
            try {
                if (context.isCancelled()) {
                    boolean late = context.getDeadline() != null && context.getDeadline().isExpired();
                    throw (late ? Status.DEADLINE_EXCEEDED.withDescription("the deadline passed while the job "
                            + "waited in the queue") : Status.CANCELLED.withDescription("cancelled while queued"))
                            .asRuntimeException();
                }
                jobContext.run(this::run);
            } catch (Throwable t) {
                failure = stoppedById ? Status.CANCELLED.withDescription("cancelled by Cancel while running")
                        .asRuntimeException() : t;
            } finally {
                jobContext.cancel(null); // releases the context's listeners
                live.remove(id);
                finished(); // before the client hears the end, so that its next call finds the slot free
            }
            synchronized (this) {
                if (failure == null) {
                    out.onCompleted();
                } else if (!out.isCancelled()) {
                    out.onError(GrpcErrors.toException(failure));
                } else {
                    LOG.log(System.Logger.Level.INFO, "job cancelled by the client: {0}", failure.getMessage());
                }
            }
        }

        private void run() {
            // 2. encode prompt and negative prompt in one batch
            long t = System.nanoTime();
            boolean guided = resolved.getGuidanceScale() > 1f;
            progress(Stage.STAGE_TEXT_ENCODING, 0, 1, 0, 0);
            EncodeRequest.Builder texts = EncodeRequest.newBuilder();
            if (guided) {
                texts.addTexts(resolved.getNegativePrompt());
            }
            EncodeResponse enc = stages.text().encode(texts.addTexts(resolved.getPrompt()).build());
            checkTokenCounts(enc, guided);
            FloatTensor hidden = TensorCodec.decode(enc.getLastHiddenState(), "last_hidden_state");
            progress(Stage.STAGE_TEXT_ENCODING, 1, 1, 0, 0);
            timings.putStageMs("text_encoding", ms(t));

            // 3-4. prepare latents and denoise (in the denoiser), relaying each step
            t = System.nanoTime();
            DenoiseRequest.Builder dr = DenoiseRequest.newBuilder()
                    .setPromptEmbeds(TensorCodec.encode(hidden.slice(guided ? 1 : 0, guided ? 2 : 1)))
                    .setWidth(resolved.getWidth()).setHeight(resolved.getHeight()).setSteps(resolved.getSteps())
                    .setGuidanceScale(resolved.getGuidanceScale()).setScheduler(resolved.getScheduler())
                    .setPreviewInterval(resolved.getPreviewInterval()).setEta(resolved.getEta());
            if (guided) {
                dr.setNegativeEmbeds(TensorCodec.encode(hidden.slice(0, 1)));
            }
            for (long s : seeds) {
                dr.addSeeds(s);
            }
            org.sdserve.proto.v1.Tensor latents = denoise(dr.build(), t);
            timings.putStageMs("denoising", ms(t));

            // 5. decode to PNG
            t = System.nanoTime();
            progress(Stage.STAGE_DECODING, 0, 1, 0, 0);
            DecodeResponse images = stages.vae().decode(DecodeRequest.newBuilder().setLatents(latents).build());
            progress(Stage.STAGE_DECODING, 1, 1, 0, 0);
            timings.putStageMs("decoding", ms(t));
            for (int i = 0; i < images.getPngCount(); i++) {
                send(GenerateEvent.newBuilder().setImage(Image.newBuilder().setIndex(i).setSeed(seeds[i])
                        .setWidth(images.getWidth()).setHeight(images.getHeight()).setPng(images.getPng(i))).build());
            }
            send(GenerateEvent.newBuilder().setCompleted(timings.setTotalMs(ms(t0))).build());
        }

        private org.sdserve.proto.v1.Tensor denoise(DenoiseRequest dr, long start) {
            Iterator<DenoiseEvent> events = stages.denoiser().denoise(dr);
            while (events.hasNext()) {
                DenoiseEvent e = events.next();
                if (e.hasLatents()) {
                    return e.getLatents().getLatents();
                }
                StepProgress p = e.getProgress();
                long perStep = ms(start) / Math.max(1, p.getStep());
                progress(Stage.STAGE_DENOISING, p.getStep(), p.getTotalSteps(), p.getTimestep(),
                        perStep * (p.getTotalSteps() - p.getStep()));
                List<com.google.protobuf.ByteString> previews = p.getPreviewPngList();
                for (int i = 0; i < previews.size(); i++) {
                    send(GenerateEvent.newBuilder().setPreview(Preview.newBuilder().setStep(p.getStep()).setIndex(i)
                            .setPng(previews.get(i))).build());
                }
            }
            throw new StatusRuntimeException(Status.INTERNAL.withDescription(
                    "the denoiser ended its stream without latents"));
        }

        private void checkTokenCounts(EncodeResponse enc, boolean guided) {
            int limit = (int) enc.getLastHiddenState().getShape(1);
            String[] fields = guided ? new String[] {"negative_prompt", "prompt"} : new String[] {"prompt"};
            for (int i = 0; i < fields.length; i++) {
                int count = enc.getTokenCounts(i);
                InvalidRequestException.require(count <= limit, "%s is %d tokens long; at most %d fit (%d with "
                        + "the start and end tokens): shorten it", fields[i], count - 2, limit - 2, limit);
            }
        }

        private void progress(Stage stage, int step, int total, float timestep, long remainingMs) {
            Progress p = Progress.newBuilder().setStage(stage).setStep(step).setTotalSteps(total)
                    .setTimestep(timestep).setElapsedMs(ms(t0)).setEstimatedRemainingMs(remainingMs).build();
            lastProgress = p;
            send(GenerateEvent.newBuilder().setProgress(p).build());
        }

        private void send(GenerateEvent e) {
            synchronized (this) {
                if (out.isCancelled()) {
                    throw Status.CANCELLED.withDescription("the client cancelled").asRuntimeException();
                }
                out.onNext(e);
            }
        }
    }

    private static long ms(long since) {
        return (System.nanoTime() - since) / 1_000_000;
    }
}
