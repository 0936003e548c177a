package org.sdserve.orchestrator.core;

import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.Status;
import io.opentelemetry.context.Scope;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.common.grpc.GrpcErrors;
import org.sdserve.common.grpc.JobIds;
import org.sdserve.proto.v1.GenerateRequest;

/**
 * The orchestrator's jobs: admission through a bounded queue (interactive ahead of batch), a fixed number running
 * at once on worker threads, a registry by id for Cancel, Watch and listing, and finished jobs kept a while so that
 * a client whose stream dropped can still collect its images. A job belongs to the engine, not to a stream: it goes
 * on without one for {@link EngineSettings#detachGrace()}. Transport adapters (gRPC's DiffusionService) only map
 * requests and {@link JobEvent}s.
 */
public final class JobEngine implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(JobEngine.class.getName());
    /** Job ids are UUIDs; anything longer is not one (and is not echoed). */
    public static final int MAX_JOB_ID = 64;

    private final Stages stages;
    private final RequestValidator validator;
    private final EngineSettings settings;
    private final Pipeline pipeline;
    private final ExecutorService workers;
    private final ScheduledExecutorService timers;
    private final Object lock = new Object();
    // guarded by lock: interactive jobs in arrival order, then batch jobs in arrival order
    private final List<Job> waiting = new ArrayList<>();
    private int running; // guarded by lock
    private final ArrayDeque<Job> finished = new ArrayDeque<>(); // guarded by lock; oldest first
    private long finishedBytes; // guarded by lock
    private final Map<String, Integer> activeByCaller = new java.util.HashMap<>(); // guarded by lock: unended jobs
    private final Map<String, Job> jobs = new ConcurrentHashMap<>(); // waiting, running and kept finished jobs
    private volatile boolean closed;
    private volatile JobObserver observer = JobObserver.NONE;

    public JobEngine(Stages stages, RequestValidator validator, EngineSettings settings) {
        this.stages = stages;
        this.validator = validator;
        this.settings = settings;
        this.pipeline = new Pipeline(stages, settings.checkpointInterval(), settings.denoiseAttempts());
        AtomicInteger n = new AtomicInteger();
        this.workers = Executors.newFixedThreadPool(settings.maxConcurrentJobs(), r -> {
            Thread t = new Thread(r, "job-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
        this.timers = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "job-timers");
            t.setDaemon(true);
            return t;
        });
        timers.scheduleWithFixedDelay(this::expireFinished, 1, 1, TimeUnit.SECONDS);
    }

    /**
     * The engine the server, the CLI and the benchmarks build: requests checked against {@code limits}, seeds
     * drawn from SecureRandom when a request has none (32 bits, so that they are easy to note and type).
     */
    public static JobEngine start(Stages stages, Limits limits, EngineSettings settings) {
        SecureRandom random = new SecureRandom();
        return new JobEngine(stages, new RequestValidator(limits, () -> random.nextLong() & 0xffffffffL), settings);
    }

    public EngineSettings settings() {
        return settings;
    }

    /** Who hears of jobs starting and ending (metrics); one at a time, NONE by default. */
    public void observe(JobObserver o) {
        observer = o;
    }

    /** Jobs waiting for a slot now. */
    public int waitingCount() {
        synchronized (lock) {
            return waiting.size();
        }
    }

    /** Jobs holding a slot now. */
    public int runningCount() {
        synchronized (lock) {
            return running;
        }
    }

    /**
     * Validates the request against the served model and admits it: it starts at once when a slot is free, or
     * waits in the queue, or, the queue full, is refused with RESOURCE_EXHAUSTED (and never gets an id).
     * {@code subscriber} hears Accepted at once, then the job's events.
     *
     * @param deadline the client's; the job's stage calls stop when it passes, queued or running; null = none
     */
    public Subscription submit(GenerateRequest request, Deadline deadline, JobSubscriber subscriber) {
        return submit(request, deadline, subscriber, Caller.ANONYMOUS);
    }

    /**
     * As {@link #submit(GenerateRequest, Deadline, JobSubscriber)}, counted under {@code caller}: a caller at its
     * quota of waiting and running jobs is refused with RESOURCE_EXHAUSTED before the job gets an id.
     */
    public Subscription submit(GenerateRequest request, Deadline deadline, JobSubscriber subscriber, Caller caller) {
        JobTrace trace = JobTrace.begin();
        try {
            return admit(request, deadline, subscriber, caller, trace);
        } catch (RuntimeException e) {
            trace.refused(e);
            throw e;
        }
    }

    private Subscription admit(GenerateRequest request, Deadline deadline, JobSubscriber subscriber, Caller caller,
                               JobTrace trace) {
        if (closed) {
            throw Status.UNAVAILABLE.withDescription("the orchestrator is shutting down; retry on another replica")
                    .asRuntimeException();
        }
        String missing = stages.unavailable();
        if (missing != null) { // fail fast: no text encoding or denoising for a job that cannot be decoded
            throw Status.UNAVAILABLE.withDescription("cannot run jobs now: " + missing).asRuntimeException();
        }
        GenerateRequest resolved = trace.validate(() -> validator.resolve(request, stages.description()));
        List<Long> seeds = Arrays.stream(RequestValidator.seeds(resolved)).boxed().toList();
        String id = UUID.randomUUID().toString();
        Context base = Context.ROOT.withValue(JobIds.KEY, id); // its stage calls carry the id (stage logs name it)
        Context.CancellableContext context = deadline == null ? base.withCancellation()
                : base.withDeadline(deadline, timers);
        Job job = new Job(id, resolved, seeds, context, caller.name(), trace);
        trace.accepted(id, resolved, seeds, caller.name());
        // (the init image and mask are not echoed back: the client sent them, and the job's log is kept)
        job.emit(new JobEvent.Accepted(job.id(), resolved.toBuilder().clearInitImage().clearMaskImage().build(),
                seeds));
        Subscription subscription = subscribe(job, 0, subscriber);
        boolean start;
        synchronized (lock) {
            int active = activeByCaller.getOrDefault(caller.name(), 0);
            if (caller.maxJobs() > 0 && active >= caller.maxJobs()) {
                context.cancel(null);
                throw Status.RESOURCE_EXHAUSTED.withDescription("\"" + caller.name() + "\" has " + active
                        + " jobs waiting or running, its quota; submit again when one ends").asRuntimeException();
            }
            start = running < settings.maxConcurrentJobs();
            if (!start && waiting.size() >= settings.queueDepth()) {
                context.cancel(null);
                throw Status.RESOURCE_EXHAUSTED.withDescription("queue full: " + waiting.size() + " jobs waiting and "
                        + running + " running (sd.orchestrator.queue-depth, max-concurrent-jobs); retry later")
                        .asRuntimeException();
            }
            activeByCaller.merge(caller.name(), 1, Integer::sum);
            jobs.put(job.id(), job); // before another thread can start it
            if (start) {
                running++;
                job.started(); // RUNNING from the moment it holds a slot
            } else {
                enqueue(job);
            }
        }
        // a deadline that passes while it waits takes it out of the queue at once
        context.addListener(c -> contextCancelled(job), Runnable::run);
        if (start) {
            startOn(job);
        }
        subscription.drain(); // Accepted (and Queued) to this subscriber
        return subscription;
    }

    /**
     * Follows a job from after {@code afterSeq}: what its log still holds, then live events, then its end.
     */
    public Subscription watch(String jobId, long afterSeq, JobSubscriber subscriber) {
        return watch(jobId, afterSeq, subscriber, Caller.ANONYMOUS);
    }

    /** As {@link #watch(String, long, JobSubscriber)}, for a job {@code caller} may see. */
    public Subscription watch(String jobId, long afterSeq, JobSubscriber subscriber, Caller caller) {
        Subscription subscription = subscribe(find(jobId, caller), afterSeq, subscriber);
        subscription.drain();
        return subscription;
    }

    /** A cursor in the job's log after {@code afterSeq}; when the last one goes, the detach grace starts. */
    private Subscription subscribe(Job job, long afterSeq, JobSubscriber subscriber) {
        Subscription subscription = new Subscription(job, job.log, subscriber, afterSeq, () -> detached(job));
        job.log.add(subscription);
        return subscription;
    }

    /**
     * Stops a job: a waiting one leaves the queue, a running one stops before its next denoising step.
     *
     * @return its state when asked: QUEUED or RUNNING when this cancelled it, else the final state it had
     */
    public Job.State cancel(String jobId) {
        return cancel(jobId, Caller.ANONYMOUS);
    }

    /** As {@link #cancel(String)}, for a job {@code caller} may see. */
    public Job.State cancel(String jobId, Caller caller) {
        Job job = find(jobId, caller);
        Job.State before = job.state();
        if (!job.isEnded()) {
            job.stop(Status.CANCELLED.withDescription("cancelled by Cancel while "
                    + (before == Job.State.QUEUED ? "queued" : "running")));
            LOG.log(System.Logger.Level.INFO, "job {0} cancelled by Cancel while {1}", job.id(), before);
        }
        return before;
    }

    /**
     * Image {@code index} of a job, once it exists (a finished job's images are kept while the job is held).
     *
     * @throws io.grpc.StatusRuntimeException NOT_FOUND for an unknown job, or an image it does not have (yet)
     */
    public JobEvent.Image image(String jobId, int index, Caller caller) {
        Job job = find(jobId, caller);
        for (JobEvent.Image i : job.log.all(JobEvent.Image.class)) {
            if (i.index() == index) {
                return i;
            }
        }
        int n = job.resolved().getNumImages();
        throw Status.NOT_FOUND.withDescription(index < 0 || index >= n
                ? "image index must be in [0, " + (n - 1) + "] for this job, got " + index
                : "job " + jobId + " has no image " + index + " (" + (job.isEnded() ? "it ended " + job.state()
                : "not made yet") + ")").asRuntimeException();
    }

    /**
     * A job's latest latent snapshot: the final one once it exists, else the latest working one.
     *
     * @throws io.grpc.StatusRuntimeException NOT_FOUND for an unknown job, or one that has none (yet)
     */
    public JobEvent.Latents latents(String jobId, Caller caller) {
        Job job = find(jobId, caller);
        List<JobEvent.Latents> held = job.log.all(JobEvent.Latents.class);
        if (held.isEmpty()) {
            throw Status.NOT_FOUND.withDescription(job.resolved().getLatentsInterval() == 0
                    ? "job " + jobId + " did not ask for latents (latents_interval 0)"
                    : "job " + jobId + " has no latents yet").asRuntimeException();
        }
        return held.stream().filter(JobEvent.Latents::last).findFirst().orElse(held.get(held.size() - 1));
    }

    /** What requests are checked against. */
    public Limits limits() {
        return validator.limits();
    }

    /** {@code request} as a job of it would run, or INVALID_ARGUMENT saying what is wrong: nothing is admitted. */
    GenerateRequest resolve(GenerateRequest request) {
        return validator.resolve(request, stages.description());
    }

    /** The stages the jobs call. */
    Stages stages() {
        return stages;
    }

    /** The model the stages serve (the denoiser's Describe, cached by the stage clients). */
    public org.sdserve.proto.v1.ModelDescription model() {
        return stages.description();
    }

    /** Most jobs one listing holds, and how many it holds when asked for 0. */
    public static final int MAX_LIST = 1000;
    public static final int DEFAULT_LIST = 100;

    /** A listed job and its place in the whole queue (1 = next to start; 0 = not waiting). */
    public record Listed(Job job, int position) {
    }

    /**
     * Jobs held now, as ListJobs shows them: running ones by start, waiting ones in queue order, finished ones the
     * latest first, at most {@code limit} in all; and how many of each there are, listed or not.
     */
    public record Listing(List<Listed> jobs, int running, int waiting, int finished) {
    }

    /**
     * The jobs {@code caller} may see (its own, unless it sees all); waiting ones keep their position in the whole
     * queue.
     *
     * @param limit 0 = {@link #DEFAULT_LIST}; at most {@link #MAX_LIST}
     */
    public Listing list(Caller caller, long limit) {
        InvalidRequestException.require(limit >= 0 && limit <= MAX_LIST, "limit must be in [0, %d], got %d",
                MAX_LIST, limit);
        int n = limit == 0 ? DEFAULT_LIST : (int) limit;
        List<Listed> queue = new ArrayList<>();
        synchronized (lock) {
            for (int i = 0; i < waiting.size(); i++) {
                if (caller.sees(waiting.get(i))) {
                    queue.add(new Listed(waiting.get(i), i + 1));
                }
            }
        }
        List<Job> held = jobs.values().stream().filter(caller::sees).toList();
        List<Listed> active = held.stream().filter(j -> j.state() == Job.State.RUNNING)
                .sorted(Comparator.comparingLong(Job::startedAt)).map(j -> new Listed(j, 0)).toList();
        List<Listed> done = held.stream().filter(Job::isEnded)
                .sorted(Comparator.comparingLong(Job::endedAt).reversed()).map(j -> new Listed(j, 0)).toList();
        List<Listed> listed = new ArrayList<>(active);
        listed.addAll(queue);
        listed.addAll(done);
        return new Listing(List.copyOf(listed.subList(0, Math.min(n, listed.size()))), active.size(), queue.size(),
                done.size());
    }

    private Job find(String jobId, Caller caller) {
        InvalidRequestException.require(!jobId.isEmpty() && jobId.length() <= MAX_JOB_ID,
                "job_id must be the id of an Accepted event (at most %d characters), got %d characters",
                MAX_JOB_ID, jobId.length());
        Job job = jobs.get(jobId);
        if (job == null || !caller.sees(job)) { // another caller's job: as if there were none
            throw Status.NOT_FOUND.withDescription("no job has id " + jobId + " (it ended more than "
                    + settings.retainFinished() + " ago, or never existed)").asRuntimeException();
        }
        return job;
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

    /** Each waiting job whose place changed hears its new one. */
    private void tellPositions() { // under lock
        int i = 0;
        for (Job j : waiting) {
            if (j.position != ++i) {
                j.position = i;
                j.emit(new JobEvent.Queued(i, waiting.size()));
            }
        }
    }

    private void startOn(Job job) {
        try {
            workers.execute(() -> execute(job));
        } catch (RejectedExecutionException e) { // closed meanwhile
            synchronized (lock) {
                running--;
            }
            finish(job, Status.UNAVAILABLE.withDescription("the orchestrator is shutting down").asRuntimeException());
        }
    }

    /** On a worker: the pipeline in the job's Context, then the slot goes to the next job, then the job's end. */
    private void execute(Job job) {
        observer.started(job.startedAt() - job.acceptedAt());
        job.trace.started();
        Throwable failure = null;
        try (Scope traced = job.trace.enter()) {
            if (job.context.isCancelled()) {
                throw whyCancelledBeforeStart(job);
            }
            job.context.run(() -> pipeline.run(job));
        } catch (Throwable t) {
            failure = t;
        } finally {
            releaseSlot(); // before the client hears the end, so that its next call finds the slot free
        }
        finish(job, failure);
    }

    private void releaseSlot() {
        Job next;
        synchronized (lock) {
            next = waiting.isEmpty() ? null : waiting.remove(0);
            if (next == null) {
                running--;
                return;
            }
            next.started();
            tellPositions();
        }
        startOn(next);
    }

    private RuntimeException whyCancelledBeforeStart(Job job) {
        if (job.stopStatus() != null) {
            return job.stopStatus().asRuntimeException();
        }
        Deadline d = job.context.getDeadline();
        boolean late = d != null && d.isExpired();
        return (late ? Status.DEADLINE_EXCEEDED.withDescription("the deadline passed while the job waited in the "
                + "queue") : Status.CANCELLED.withDescription("cancelled while queued")).asRuntimeException();
    }

    /** Its Context was cancelled (deadline, Cancel, no watcher): a waiting job leaves the queue now. */
    private void contextCancelled(Job job) {
        if (leaveQueue(job)) {
            finish(job, whyCancelledBeforeStart(job));
        }
    }

    private boolean leaveQueue(Job job) {
        synchronized (lock) {
            boolean was = waiting.remove(job);
            if (was) {
                tellPositions();
            }
            return was;
        }
    }

    /** Its last stream went away: after the grace, if nobody re-attached, it stops. */
    private void detached(Job job) {
        if (job.isEnded() || closed) {
            return;
        }
        Duration grace = settings.detachGrace();
        if (grace.isZero()) {
            orphaned(job, "its client left");
        } else {
            timers.schedule(() -> orphaned(job, "no client followed it for " + grace.toMillis() + " ms"),
                    grace.toMillis(), TimeUnit.MILLISECONDS);
        }
    }

    private void orphaned(Job job, String why) {
        if (job.watchers() == 0 && !job.isEnded()) {
            LOG.log(System.Logger.Level.INFO, "{0}stops ({1}): {2}", JobIds.logPrefix(job.id(), job.trace.traceId()),
                    job.state(), why);
            job.stop(Status.CANCELLED.withDescription("cancelled: " + why));
        }
    }

    private void finish(Job job, Throwable failure) {
        Throwable end = failure == null ? null
                : job.stopStatus() != null ? job.stopStatus().asRuntimeException() : failure;
        Job.State state = end == null ? Job.State.COMPLETED
                : GrpcErrors.toStatus(end).getCode() == Status.Code.CANCELLED ? Job.State.CANCELLED : Job.State.FAILED;
        if (!job.end(state, end)) {
            return;
        }
        job.trace.ended(state, end);
        if (state == Job.State.FAILED) {
            LOG.log(System.Logger.Level.INFO, "{0}failed: {1}", JobIds.logPrefix(job.id(), job.trace.traceId()),
                    GrpcErrors.toStatus(end));
        }
        List<JobEvent.Completed> done = job.log.all(JobEvent.Completed.class);
        observer.ended(state, done.isEmpty() ? Map.of() : done.get(0).stageMs(),
                job.log.all(JobEvent.Image.class).size());
        synchronized (lock) {
            activeByCaller.computeIfPresent(job.caller(), (k, n) -> n > 1 ? n - 1 : null);
            finished.addLast(job);
            finishedBytes += job.log.bytes();
            expire(); // before its watchers hear the end: a Watch after it finds the job only if it is kept
        }
        job.log.deliver();
    }

    private void expireFinished() {
        synchronized (lock) {
            expire();
        }
    }

    /** Forgets the oldest finished jobs beyond the count, the bytes or the age they may be kept for. */
    private void expire() { // under lock
        long tooOld = System.nanoTime() - settings.retainFinished().toNanos();
        while (!finished.isEmpty() && (finished.size() > settings.retainedJobs()
                || finishedBytes > settings.retainedBytes() || finished.peekFirst().endedAt() - tooOld <= 0)) {
            Job gone = finished.pollFirst();
            finishedBytes -= gone.log.bytes();
            jobs.remove(gone.id());
        }
    }

    /**
     * Graceful shutdown: new jobs are refused and waiting ones end now, both UNAVAILABLE (their clients retry on
     * another replica); running jobs may finish within {@code grace}; then {@link #close()} stops what is left.
     * Watch keeps working meanwhile.
     *
     * @return how many running jobs finished within the grace
     */
    public int drain(Duration grace) {
        closed = true;
        List<Job> queue;
        synchronized (lock) {
            queue = List.copyOf(waiting);
        }
        for (Job j : queue) {
            j.stop(Status.UNAVAILABLE.withDescription("the orchestrator is shutting down and the job had not "
                    + "started; retry"));
        }
        List<Job> active = jobs.values().stream().filter(j -> j.state() == Job.State.RUNNING).toList();
        long until = System.nanoTime() + grace.toNanos();
        LOG.log(System.Logger.Level.INFO, "draining: {0} waiting jobs refused, {1} running get {2} ms to finish",
                queue.size(), active.size(), grace.toMillis());
        try {
            while (active.stream().anyMatch(j -> !j.isEnded()) && System.nanoTime() - until < 0) {
                Thread.sleep(20);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        int done = (int) active.stream().filter(j -> j.state() == Job.State.COMPLETED).count();
        close();
        return done;
    }

    /** Stops every job (UNAVAILABLE, so that clients retry elsewhere) and the engine's threads. */
    @Override
    public void close() {
        closed = true;
        for (Job j : jobs.values()) {
            if (!j.isEnded()) {
                j.stop(Status.UNAVAILABLE.withDescription("the orchestrator is shutting down; retry"));
            }
        }
        workers.shutdown();
        try {
            if (!workers.awaitTermination(10, TimeUnit.SECONDS)) {
                workers.shutdownNow();
            }
        } catch (InterruptedException e) {
            workers.shutdownNow();
            Thread.currentThread().interrupt();
        }
        timers.shutdownNow();
    }
}
