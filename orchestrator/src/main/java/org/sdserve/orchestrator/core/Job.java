package org.sdserve.orchestrator.core;

import io.grpc.Context;
import io.grpc.Status;
import java.util.List;
import org.sdserve.proto.v1.GenerateRequest;
import org.sdserve.proto.v1.Priority;

/**
 * One accepted generation: its id, resolved request and seeds, its state, its event log, and the Context its
 * stage calls run in (the client's deadline; cancelled by Cancel, by its deadline, or when no client watches it).
 */
public final class Job {
    /** Where a job is in its life; the last three are final. */
    public enum State { QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED }

    private final String id;
    private final GenerateRequest resolved;
    private final List<Long> seeds;
    private final long acceptedAt = System.nanoTime();
    final JobLog log = new JobLog();
    final Context.CancellableContext context;
    private volatile State state = State.QUEUED;
    private volatile JobEvent.Progress lastProgress;
    private volatile Status stopStatus; // why it was stopped from the server side, once it was
    private volatile long startedAt; // nanoTime when a worker took it
    private volatile long endedAt;
    int position; // guarded by the engine's lock: last position told, 0 = none
    private final String caller;

    final JobTrace trace;

    Job(String id, GenerateRequest resolved, List<Long> seeds, Context.CancellableContext context, String caller,
        JobTrace trace) {
        this.id = id;
        this.trace = trace;
        this.caller = caller;
        this.resolved = resolved;
        this.seeds = seeds;
        this.context = context;
    }

    public String id() {
        return id;
    }

    /** The name its submitter was counted under ("" without tokens). */
    public String caller() {
        return caller;
    }

    /** The request with every default filled in. */
    public GenerateRequest resolved() {
        return resolved;
    }

    public List<Long> seeds() {
        return seeds;
    }

    public State state() {
        return state;
    }

    public boolean batch() {
        return resolved.getPriority() == Priority.PRIORITY_BATCH;
    }

    /** The last Progress it reported, null before its first. */
    public JobEvent.Progress lastProgress() {
        return lastProgress;
    }

    public long ageMs() {
        return (System.nanoTime() - acceptedAt) / 1_000_000;
    }

    long acceptedAt() {
        return acceptedAt;
    }

    long startedAt() {
        return startedAt;
    }

    long endedAt() {
        return endedAt;
    }

    /** Streams following it now. */
    public int watchers() {
        return log.subscribers();
    }

    /** The status its end reports when it was stopped by the server (Cancel, no watcher, shutdown); else null. */
    Status stopStatus() {
        return stopStatus;
    }

    void emit(JobEvent e) {
        if (e instanceof JobEvent.Progress p) {
            lastProgress = p;
        }
        log.append(e);
    }

    void started() {
        startedAt = System.nanoTime();
        state = State.RUNNING;
        log.forget(JobEvent.Queued.class);
    }

    /** Cancels its stage calls; its end reports {@code why} instead of the failure they end with. */
    void stop(Status why) {
        if (stopStatus == null) {
            stopStatus = why;
        }
        context.cancel(null);
    }

    /** @return false when it had ended already (it ends once) */
    boolean end(State finalState, Throwable failure) {
        synchronized (this) {
            if (isEnded()) {
                return false;
            }
            endedAt = System.nanoTime();
            state = finalState; // one write: it is listed as running or as ended, never as neither
        }
        context.cancel(null); // releases the Context's listeners and timer
        log.end(failure);
        return true;
    }

    public boolean isEnded() {
        State s = state;
        return s == State.COMPLETED || s == State.FAILED || s == State.CANCELLED;
    }
}
