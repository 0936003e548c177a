package org.sdserve.orchestrator.grpc;

import io.grpc.Context;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.concurrent.atomic.AtomicInteger;
import org.sdserve.common.grpc.Calls;
import org.sdserve.common.grpc.GrpcErrors;
import org.sdserve.orchestrator.auth.GrpcAuth;
import org.sdserve.orchestrator.core.Evaluator;
import org.sdserve.orchestrator.core.Job;
import org.sdserve.orchestrator.core.JobEngine;
import org.sdserve.orchestrator.core.JobEvent;
import org.sdserve.orchestrator.core.JobSubscriber;
import org.sdserve.orchestrator.core.Subscription;
import org.sdserve.proto.v1.Accepted;
import org.sdserve.proto.v1.CancelRequest;
import org.sdserve.proto.v1.CancelResponse;
import org.sdserve.proto.v1.Completed;
import org.sdserve.proto.v1.DiffusionGrpc;
import org.sdserve.proto.v1.EvaluateEvent;
import org.sdserve.proto.v1.EvaluateRequest;
import org.sdserve.proto.v1.EvaluationProgress;
import org.sdserve.proto.v1.EvaluationResult;
import org.sdserve.proto.v1.GenerateEvent;
import org.sdserve.proto.v1.GenerateRequest;
import org.sdserve.proto.v1.Image;
import org.sdserve.proto.v1.JobInfo;
import org.sdserve.proto.v1.LatentSnapshot;
import org.sdserve.proto.v1.JobState;
import org.sdserve.proto.v1.ListJobsRequest;
import org.sdserve.proto.v1.ListJobsResponse;
import org.sdserve.proto.v1.Preview;
import org.sdserve.proto.v1.Progress;
import org.sdserve.proto.v1.Queued;
import org.sdserve.proto.v1.Stage;
import org.sdserve.proto.v1.WatchRequest;

/**
 * The public Diffusion service over gRPC: maps requests to the {@link JobEngine} and its {@link JobEvent}s to
 * GenerateEvents. Streams follow gRPC flow control: an event is written only while the call is ready, and the
 * job's log (which keeps the latest of each superseded kind) holds the rest, so a slow reader costs no memory.
 */
public final class DiffusionService extends DiffusionGrpc.DiffusionImplBase {
    private final JobEngine engine;
    private final Evaluator evaluator;

    /** With the default evaluation limits: one run at a time, of at most 2048 images. */
    public DiffusionService(JobEngine engine) {
        this(engine, new Evaluator(engine, 1, 2048));
    }

    public DiffusionService(JobEngine engine, Evaluator evaluator) {
        this.engine = engine;
        this.evaluator = evaluator;
    }

    @Override
    public void generate(GenerateRequest request, StreamObserver<GenerateEvent> observer) {
        Stream stream = new Stream((ServerCallStreamObserver<GenerateEvent>) observer);
        try {
            stream.follow(engine.submit(request, Context.current().getDeadline(), stream, GrpcAuth.caller()));
        } catch (Throwable t) {
            observer.onError(GrpcErrors.toException(t));
        }
    }

    @Override
    public void watch(WatchRequest request, StreamObserver<GenerateEvent> observer) {
        Stream stream = new Stream((ServerCallStreamObserver<GenerateEvent>) observer);
        try {
            stream.follow(engine.watch(request.getJobId(), request.getAfterSeq(), stream, GrpcAuth.caller()));
        } catch (Throwable t) {
            observer.onError(GrpcErrors.toException(t));
        }
    }

    @Override
    public void cancel(CancelRequest request, StreamObserver<CancelResponse> out) {
        Calls.unary(out, () -> CancelResponse.newBuilder().setState(state(engine.cancel(request.getJobId(),
                GrpcAuth.caller()))).build());
    }

    @Override
    public void listJobs(ListJobsRequest request, StreamObserver<ListJobsResponse> out) {
        Calls.unary(out, () -> {
            JobEngine.Listing jobs = engine.list(GrpcAuth.caller(), Integer.toUnsignedLong(request.getLimit()));
            ListJobsResponse.Builder b = ListJobsResponse.newBuilder().setRunning(jobs.running())
                    .setWaiting(jobs.waiting()).setFinished(jobs.finished());
            for (JobEngine.Listed l : jobs.jobs()) {
                Job j = l.job();
                JobInfo.Builder info = JobInfo.newBuilder().setJobId(j.id()).setState(state(j.state()))
                        .setPriority(j.resolved().getPriority()).setPosition(l.position()).setAgeMs(j.ageMs())
                        .setWatchers(j.watchers());
                JobEvent.Progress p = j.lastProgress();
                if (p != null) {
                    info.setStage(stage(p.stage())).setStep(p.step()).setTotalSteps(p.totalSteps());
                }
                b.addJobs(info);
            }
            return b.build();
        });
    }

    @Override
    public void evaluate(EvaluateRequest request, StreamObserver<EvaluateEvent> observer) {
        EvaluationStream stream = new EvaluationStream((ServerCallStreamObserver<EvaluateEvent>) observer);
        try {
            stream.follow(evaluator.start(request, Context.current().getDeadline(), GrpcAuth.caller(), stream));
        } catch (Throwable t) {
            observer.onError(GrpcErrors.toException(t));
        }
    }

    private static JobState state(Job.State s) {
        return switch (s) {
            case QUEUED -> JobState.JOB_STATE_QUEUED;
            case RUNNING -> JobState.JOB_STATE_RUNNING;
            case COMPLETED -> JobState.JOB_STATE_COMPLETED;
            case FAILED -> JobState.JOB_STATE_FAILED;
            case CANCELLED -> JobState.JOB_STATE_CANCELLED;
        };
    }

    private static Stage stage(JobEvent.Stage s) {
        return switch (s) {
            case TEXT_ENCODING -> Stage.STAGE_TEXT_ENCODING;
            case IMAGE_ENCODING -> Stage.STAGE_IMAGE_ENCODING;
            case DENOISING -> Stage.STAGE_DENOISING;
            case DECODING -> Stage.STAGE_DECODING;
        };
    }

    /** A job event as it goes on the wire. */
    static GenerateEvent toProto(long seq, JobEvent event) {
        GenerateEvent.Builder b = GenerateEvent.newBuilder().setSeq(seq);
        if (event instanceof JobEvent.Accepted a) {
            b.setAccepted(Accepted.newBuilder().setJobId(a.jobId()).setResolved(a.resolved()).addAllSeeds(a.seeds()));
        } else if (event instanceof JobEvent.Queued q) {
            b.setQueued(Queued.newBuilder().setPosition(q.position()).setQueueDepth(q.depth()));
        } else if (event instanceof JobEvent.Progress p) {
            b.setProgress(Progress.newBuilder().setStage(stage(p.stage())).setStep(p.step())
                    .setTotalSteps(p.totalSteps()).setTimestep(p.timestep()).setElapsedMs(p.elapsedMs())
                    .setEstimatedRemainingMs(p.remainingMs()));
        } else if (event instanceof JobEvent.Preview p) {
            b.setPreview(Preview.newBuilder().setStep(p.step()).setIndex(p.index()).setPng(p.png()));
        } else if (event instanceof JobEvent.Image i) {
            b.setImage(Image.newBuilder().setIndex(i.index()).setSeed(i.seed()).setWidth(i.width())
                    .setHeight(i.height()).setPng(i.png()));
        } else if (event instanceof JobEvent.Latents l) {
            b.setLatents(LatentSnapshot.newBuilder().setStep(l.step()).setFinal(l.last()).setLatents(l.latents()));
        } else if (event instanceof JobEvent.Completed c) {
            b.setCompleted(Completed.newBuilder().putAllStageMs(c.stageMs()).setTotalMs(c.totalMs()));
        }
        return b.build();
    }

    /**
     * Events a stream may take beyond the transport's readiness before the log holds them instead: a few, so
     * that a reader a round trip behind (per-message flow control, as in-process) still gets every step, while a
     * reader that stopped costs at most this many events of buffer.
     */
    static final int SLACK_EVENTS = 8;

    /** One server stream following a job: written while ready, drained again on onReady, detached on cancel. */
    private static final class Stream implements JobSubscriber {
        private final ServerCallStreamObserver<GenerateEvent> out;
        private final AtomicInteger beyondReady = new AtomicInteger();
        private Subscription subscription; // guarded by this
        private boolean cancelled; // guarded by this

        Stream(ServerCallStreamObserver<GenerateEvent> out) {
            this.out = out;
            // both while the service method runs, as grpc-java requires; they find the subscription once it exists
            out.setOnCancelHandler(this::cancelled);
            out.setOnReadyHandler(this::onReady);
        }

        void follow(Subscription s) {
            boolean gone;
            synchronized (this) {
                subscription = s;
                gone = cancelled;
            }
            if (gone) {
                s.close();
            } else {
                s.drain(); // an onReady before this found no subscription to wake
            }
        }

        private void cancelled() {
            Subscription s;
            synchronized (this) {
                cancelled = true;
                s = subscription;
            }
            if (s != null) {
                s.close();
            }
        }

        private void onReady() {
            if (out.isReady()) { // (a late first onReady may find the stream full again)
                beyondReady.set(0);
            }
            Subscription s;
            synchronized (this) {
                s = subscription;
            }
            if (s != null) {
                s.drain();
            }
        }

        @Override
        public boolean ready() {
            return out.isReady() || beyondReady.get() < SLACK_EVENTS;
        }

        @Override
        public void event(long seq, JobEvent event) {
            if (!out.isReady()) {
                beyondReady.incrementAndGet();
            }
            out.onNext(toProto(seq, event));
        }

        @Override
        public void end(Throwable failure) {
            if (out.isCancelled()) {
                return;
            }
            if (failure == null) {
                out.onCompleted();
            } else {
                out.onError(GrpcErrors.toException(failure));
            }
        }
    }

    /**
     * One Evaluate stream: progress written while the call is ready (a reader that cannot keep up gets the latest
     * when it can), the result always, then the end; a cancelled call cancels the run.
     */
    private static final class EvaluationStream implements Evaluator.Observer {
        private final ServerCallStreamObserver<EvaluateEvent> out;
        private Evaluator.Run run; // guarded by this
        private boolean cancelled; // guarded by this
        private EvaluationProgress pending; // guarded by this: the latest progress not yet written
        private boolean ended; // guarded by this

        EvaluationStream(ServerCallStreamObserver<EvaluateEvent> out) {
            this.out = out;
            out.setOnCancelHandler(this::cancelled);
            out.setOnReadyHandler(this::flush);
        }

        void follow(Evaluator.Run r) {
            boolean gone;
            synchronized (this) {
                run = r;
                gone = cancelled;
            }
            if (gone) {
                r.cancel();
            }
        }

        private void cancelled() {
            Evaluator.Run r;
            synchronized (this) {
                cancelled = true;
                r = run;
            }
            if (r != null) {
                r.cancel();
            }
        }

        private synchronized void flush() {
            if (pending != null && !ended && !cancelled && out.isReady()) {
                out.onNext(EvaluateEvent.newBuilder().setProgress(pending).build());
                pending = null;
            }
        }

        @Override
        public void progress(EvaluationProgress progress) {
            synchronized (this) {
                pending = progress;
            }
            flush();
        }

        @Override
        public synchronized void result(EvaluationResult result) {
            if (ended || cancelled) {
                return;
            }
            ended = true;
            out.onNext(EvaluateEvent.newBuilder().setResult(result).build()); // superseding any pending progress
            out.onCompleted();
        }

        @Override
        public synchronized void failed(Throwable failure) {
            if (ended || cancelled) {
                return;
            }
            ended = true;
            out.onError(GrpcErrors.toException(failure));
        }
    }
}
