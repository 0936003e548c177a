package org.sdserve.denoise.core;

import java.util.List;

/** Receives each finished step and decides whether the job goes on. Called on the denoising thread. */
public interface StepListener {
    /**
     * @param step 1-based number of steps done
     * @param previews one PNG per image on preview steps, else empty
     */
    void onStep(int step, int total, double timestep, List<byte[]> previews);

    /** A checkpoint, every checkpoint-interval steps of the job (not after its last step). */
    default void onCheckpoint(Checkpoint checkpoint) {
    }

    /** Checked before every step: true stops the job with a JobCancelledException. */
    boolean cancelled();
}
