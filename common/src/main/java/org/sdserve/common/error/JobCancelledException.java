package org.sdserve.common.error;

/** The caller cancelled, or its deadline passed, while work was under way. Maps to CANCELLED. */
public final class JobCancelledException extends RuntimeException {
    public JobCancelledException(String message) {
        super(message);
    }
}
