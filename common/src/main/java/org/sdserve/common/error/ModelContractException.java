package org.sdserve.common.error;

/**
 * A model directory or graph does not match what the stage needs (missing file, missing input, wrong rank or
 * element type). Raised at start-up; a request that meets it maps to FAILED_PRECONDITION.
 */
public final class ModelContractException extends RuntimeException {
    public ModelContractException(String message) {
        super(message);
    }

    public ModelContractException(String message, Throwable cause) {
        super(message, cause);
    }
}
