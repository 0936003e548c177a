package org.sdserve.orchestrator.core;

/**
 * One stream following a job (a Generate or Watch call). Called by one thread at a time, in seq order.
 */
public interface JobSubscriber {
    /**
     * Flow control: false while the stream cannot take another event without buffering. The adapter then calls
     * {@link Subscription#drain()} when it can (gRPC's onReady); events superseded meanwhile are never sent.
     */
    boolean ready();

    /** The next event of the job's log. */
    void event(long seq, JobEvent event);

    /** The job ended: null when it completed, else why it did not. Called once, after the last event. */
    void end(Throwable failure);
}
