package org.sdserve.orchestrator.core;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * One job's events, each with its seq (1, 2, ...), compacted: an event with a {@link JobEvent#supersedeKey} replaces
 * the older one of its key, so the log holds at most Accepted, one Queued, one Progress, one Preview per image, the
 * images and Completed, whatever the number of steps. Subscriptions read it from their own cursor; a reader that
 * fell behind skips what was superseded. Bounded, therefore, by the job's images, not by its steps or its readers'
 * speed.
 */
final class JobLog {
    /** An event and its place in the log. */
    record Entry(long seq, JobEvent event) {
    }

    private final List<Entry> entries = new ArrayList<>(); // guarded by this; ascending seq
    private final List<Subscription> subscriptions = new CopyOnWriteArrayList<>();
    private long lastSeq; // guarded by this
    private long bytes; // guarded by this
    private boolean ended; // guarded by this
    private Throwable failure; // guarded by this

    /** Appends an event (dropping the one it supersedes) and delivers it to the subscriptions that can take it. */
    void append(JobEvent event) {
        synchronized (this) {
            if (ended) {
                return;
            }
            Object key = JobEvent.supersedeKey(event);
            if (key != null) {
                remove(key);
            }
            entries.add(new Entry(++lastSeq, event));
            bytes += JobEvent.payloadBytes(event);
        }
        drainAll();
    }

    /** Drops the retained event of this key (a Queued event once the job starts). */
    void forget(Object key) {
        synchronized (this) {
            remove(key);
        }
    }

    private void remove(Object key) { // under this
        for (int i = entries.size() - 1; i >= 0; i--) {
            JobEvent e = entries.get(i).event();
            if (key.equals(JobEvent.supersedeKey(e))) {
                bytes -= JobEvent.payloadBytes(e);
                entries.remove(i);
                return;
            }
        }
    }

    /**
     * The log ends: null = completed, else the failure. On completion previews are dropped (the images stand for
     * them). Subscriptions get what they have not seen, then the end, on {@link #deliver()}.
     */
    void end(Throwable failure) {
        synchronized (this) {
            if (ended) {
                return;
            }
            ended = true;
            this.failure = failure;
            if (failure == null) {
                entries.removeIf(e -> e.event() instanceof JobEvent.Preview);
                bytes = entries.stream().mapToLong(e -> JobEvent.payloadBytes(e.event())).sum();
            }
        }
    }

    /** Sends each subscription what it can take. */
    void deliver() {
        drainAll();
    }

    /** What a reader at {@code cursor} gets next: an entry, the end, or nothing yet. */
    record Next(Entry entry, boolean ended, Throwable failure) {
    }

    synchronized Next next(long cursor) {
        for (Entry e : entries) {
            if (e.seq() > cursor) {
                return new Next(e, false, null);
            }
        }
        return ended ? new Next(null, true, failure) : null;
    }

    /** The events of one kind it holds now, in log order. */
    synchronized <T extends JobEvent> List<T> all(Class<T> kind) {
        return entries.stream().map(Entry::event).filter(kind::isInstance).map(kind::cast).toList();
    }

    synchronized boolean ended() {
        return ended;
    }

    synchronized long bytes() {
        return bytes;
    }

    void add(Subscription s) {
        subscriptions.add(s);
    }

    /** @return whether any subscription is left */
    boolean remove(Subscription s) {
        subscriptions.remove(s);
        return !subscriptions.isEmpty();
    }

    int subscribers() {
        return subscriptions.size();
    }

    private void drainAll() {
        for (Subscription s : subscriptions) {
            s.drain();
        }
    }
}
