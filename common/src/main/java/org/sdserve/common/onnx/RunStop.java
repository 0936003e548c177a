package org.sdserve.common.onnx;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.util.ArrayList;
import java.util.List;
import org.sdserve.common.error.JobCancelledException;

/**
 * Stops work whose caller has gone: fired once (by the transport adapter, when its call is cancelled or its
 * deadline passes), it sets ONNX Runtime's terminate flag on every {@link OnnxModel#run} made with it that is in
 * flight, and on any made later, so that a long {@code session.run} ends within one kernel instead of computing
 * for nobody. Between runs the core asks {@link #check}.
 */
public final class RunStop {
    /** A stop that never fires (in-process callers that wait for the result). */
    public static final RunStop NEVER = new RunStop();

    private final List<OrtSession.RunOptions> running = new ArrayList<>();
    private boolean stopped;

    /** Fires the stop: runs in flight end early, later runs and {@link #check} throw JobCancelledException. */
    public void stop() {
        if (this == NEVER) {
            return;
        }
        synchronized (this) {
            stopped = true;
            for (OrtSession.RunOptions o : running) {
                terminate(o);
            }
        }
    }

    public synchronized boolean stopped() {
        return stopped;
    }

    /** Throws JobCancelledException once stopped: {@code what} names the work that was given up. */
    public void check(String what) {
        if (stopped()) {
            throw new JobCancelledException(what + " stopped: the caller has gone");
        }
    }

    /** Registers run options of a run about to start; terminated at once when already stopped. */
    synchronized void started(OrtSession.RunOptions options) {
        if (stopped) {
            terminate(options);
        }
        running.add(options);
    }

    /** Unregisters them before they are closed: a later stop() never touches closed native options. */
    synchronized void ended(OrtSession.RunOptions options) {
        running.remove(options);
    }

    private static void terminate(OrtSession.RunOptions o) {
        try {
            o.setTerminate(true);
        } catch (OrtException e) {
            throw new IllegalStateException("cannot set ONNX Runtime's terminate flag: " + e.getMessage(), e);
        }
    }
}
