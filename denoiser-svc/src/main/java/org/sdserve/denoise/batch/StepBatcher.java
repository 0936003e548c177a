package org.sdserve.denoise.batch;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import org.sdserve.common.tensor.FloatTensor;
import org.sdserve.denoise.core.DenoiseRun;
import org.sdserve.denoise.core.UNet;

/**
 * Step-level batching across jobs: one thread owns the UNet and, for each call, takes the run waiting longest
 * and every other waiting run that can share its {@code session.run} (same latent channels and size, same
 * context shape, and, for a UNet with a rank-0 timestep, the same timestep), up to {@code maxRows} rows;
 * concatenates their rows, calls the UNet once, hands each run its slice, and puts the unfinished runs back
 * at the end of the line. Row order inside a call is the runs' order, each run's rows contiguous.
 */
public final class StepBatcher implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(StepBatcher.class.getName());
    private final UNet unet;
    private final BatchSettings settings;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition arrived = lock.newCondition();
    private final ArrayDeque<DenoiseRun> waiting = new ArrayDeque<>(); // guarded by lock
    private final Thread thread;
    private final AtomicLong calls = new AtomicLong();
    private final AtomicLong rows = new AtomicLong();
    private volatile int inFlightRows;
    private volatile boolean closed;

    public StepBatcher(UNet unet, BatchSettings settings) {
        this.unet = unet;
        this.settings = settings;
        this.thread = new Thread(this::loop, "unet-batcher");
        thread.setDaemon(true);
        thread.start();
    }

    /** Queues a run for its next step; its result completes on the batcher thread. */
    public void submit(DenoiseRun run) {
        lock.lock();
        try {
            if (closed) {
                run.fail(new IllegalStateException("the denoiser is shutting down"));
                return;
            }
            waiting.add(run);
            arrived.signal();
        } finally {
            lock.unlock();
        }
    }

    /** UNet calls made so far. */
    public long calls() {
        return calls.get();
    }

    /** UNet rows run so far (rows / calls is the mean batch). */
    public long rows() {
        return rows.get();
    }

    /** Rows of all runs in progress (waiting or in the current call): the denoiser's load. */
    public int rowsInFlight() {
        return inFlightRows;
    }

    private void loop() {
        while (!closed) {
            List<DenoiseRun> group;
            try {
                group = nextGroup();
            } catch (InterruptedException e) {
                break;
            }
            if (!group.isEmpty()) {
                step(group);
            }
        }
        failAll(new IllegalStateException("the denoiser is shutting down"));
    }

    /** Waits for runs, then takes the oldest and the waiting runs that can share its call. */
    private List<DenoiseRun> nextGroup() throws InterruptedException {
        lock.lockInterruptibly();
        try {
            while (waiting.isEmpty()) {
                inFlightRows = 0;
                arrived.await();
            }
            dropCancelled();
            if (waiting.isEmpty()) {
                return List.of();
            }
            long windowNanos = settings.window().toNanos();
            // a call that is not full waits up to the window for more rows (each arrival re-checks fullness)
            long left = windowNanos;
            while (left > 0 && !closed && compatibleRows(waiting.peekFirst()) < settings.maxRows()) {
                left = arrived.awaitNanos(left);
                dropCancelled();
                if (waiting.isEmpty()) {
                    return List.of();
                }
            }
            inFlightRows = waiting.stream().mapToInt(DenoiseRun::rows).sum();
            DenoiseRun first = waiting.pollFirst();
            List<DenoiseRun> group = new ArrayList<>(List.of(first));
            int taken = first.rows();
            for (Iterator<DenoiseRun> it = waiting.iterator(); it.hasNext(); ) {
                DenoiseRun r = it.next();
                if (taken + r.rows() <= settings.maxRows() && compatible(first, r)) {
                    group.add(r);
                    taken += r.rows();
                    it.remove();
                }
            }
            return group;
        } finally {
            lock.unlock();
        }
    }

    private int compatibleRows(DenoiseRun first) {
        return waiting.stream().filter(r -> compatible(first, r)).mapToInt(DenoiseRun::rows).sum();
    }

    /** Whether two runs' rows can go through one session.run. */
    private boolean compatible(DenoiseRun a, DenoiseRun b) {
        long[] la = a.latentShape();
        long[] lb = b.latentShape();
        return Arrays.equals(la, 1, la.length, lb, 1, lb.length)
                && Arrays.equals(a.context().shape(), 1, 3, b.context().shape(), 1, 3)
                && (unet.perRowTimestep() || a.timestep() == b.timestep());
    }

    private void dropCancelled() {
        waiting.removeIf(r -> {
            if (r.cancelled()) {
                r.cancel();
                return true;
            }
            return false;
        });
    }

    /** One UNet call for the group's rows, then each run's guidance and scheduler step. */
    private void step(List<DenoiseRun> group) {
        FloatTensor out;
        try {
            List<FloatTensor> inputs = new ArrayList<>(group.size());
            List<FloatTensor> contexts = new ArrayList<>(group.size());
            int n = group.stream().mapToInt(DenoiseRun::rows).sum();
            double[] t = new double[n];
            int row = 0;
            for (DenoiseRun r : group) {
                inputs.add(r.modelInput());
                contexts.add(r.context());
                Arrays.fill(t, row, row + r.rows(), r.timestep());
                row += r.rows();
            }
            out = unet.predict(FloatTensor.concat(inputs), t, FloatTensor.concat(contexts));
            calls.incrementAndGet();
            rows.addAndGet(n);
        } catch (RuntimeException | Error e) {
            LOG.log(System.Logger.Level.WARNING, "a batched UNet call of " + group.size() + " job(s) failed", e);
            group.forEach(r -> r.fail(e));
            return;
        }
        int row = 0;
        List<DenoiseRun> again = new ArrayList<>(group.size());
        for (DenoiseRun r : group) {
            try {
                r.advance(out.slice(row, row + r.rows()));
                if (!r.done()) {
                    again.add(r);
                }
            } catch (RuntimeException | Error e) {
                r.fail(e);
            }
            row += r.rows();
        }
        if (!again.isEmpty()) {
            lock.lock();
            try {
                waiting.addAll(again);
            } finally {
                lock.unlock();
            }
        }
    }

    private void failAll(Throwable why) {
        lock.lock();
        try {
            waiting.forEach(r -> r.fail(why));
            waiting.clear();
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void close() {
        lock.lock();
        try {
            closed = true;
            arrived.signalAll();
        } finally {
            lock.unlock();
        }
        thread.interrupt();
        try {
            thread.join(TimeUnit.SECONDS.toMillis(10));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
