package org.sdserve.orchestrator.core;

import java.util.Map;

/**
 * What the engine tells about its jobs as they go, for metrics: the core knows no metrics library (the app wires a
 * Micrometer one). Called on the engine's threads; must not block.
 */
public interface JobObserver {
    JobObserver NONE = new JobObserver() {
    };

    /** A job took a slot after waiting {@code queuedNanos} since it was accepted (0 when a slot was free). */
    default void started(long queuedNanos) {
    }

    /**
     * A job ended (once per accepted job).
     *
     * @param stageMs wall time per stage of a completed job ("text_encoding", "denoising", "decoding"); empty else
     * @param images images it produced
     */
    default void ended(Job.State state, Map<String, Long> stageMs, int images) {
    }
}
