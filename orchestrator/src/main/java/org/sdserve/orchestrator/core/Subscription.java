package org.sdserve.orchestrator.core;

/**
 * One subscriber's cursor in a job's log. {@link #drain()} sends it what it has not seen while it is ready; the
 * job's thread calls it on each new event, the adapter when its stream can take more.
 */
public final class Subscription implements AutoCloseable {
    private final Job job;
    private final JobLog log;
    private final JobSubscriber subscriber;
    private final Runnable onLastDetached;
    private long cursor; // guarded by this: the seq last delivered
    private boolean closed; // guarded by this

    Subscription(Job job, JobLog log, JobSubscriber subscriber, long afterSeq, Runnable onLastDetached) {
        this.job = job;
        this.log = log;
        this.subscriber = subscriber;
        this.cursor = afterSeq;
        this.onLastDetached = onLastDetached;
    }

    /** Delivers what this subscriber has not seen, while it is ready; then the end once the job has ended. */
    public void drain() {
        boolean finished = false;
        synchronized (this) {
            try {
                while (!closed) {
                    JobLog.Next next = log.next(cursor);
                    if (next == null) {
                        return;
                    }
                    if (next.ended()) {
                        closed = true;
                        finished = true;
                        subscriber.end(next.failure());
                    } else if (subscriber.ready()) {
                        cursor = next.entry().seq();
                        subscriber.event(cursor, next.entry().event());
                    } else {
                        return; // the adapter calls again when its stream is ready
                    }
                }
            } catch (RuntimeException e) { // a stream that broke under us: stop feeding it
                closed = true;
                System.getLogger(Subscription.class.getName()).log(System.Logger.Level.DEBUG,
                        "a subscriber of job " + job.id() + " failed", e);
            }
        }
        if (closed) {
            detach(finished);
        }
    }

    /** The stream went away (its client cancelled or dropped): the job may go on without it. */
    @Override
    public void close() {
        synchronized (this) {
            closed = true;
        }
        detach(false);
    }

    private void detach(boolean jobEnded) {
        if (!log.remove(this) && !jobEnded) {
            onLastDetached.run();
        }
    }
}
