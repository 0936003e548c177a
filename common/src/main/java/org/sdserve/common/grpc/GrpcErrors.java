package org.sdserve.common.grpc;

import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.StatusRuntimeException;
import java.util.concurrent.CancellationException;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.common.error.JobCancelledException;
import org.sdserve.common.error.ModelContractException;

/** The one place where domain exceptions become gRPC statuses. Nothing escapes as UNKNOWN without a message. */
public final class GrpcErrors {
    private GrpcErrors() {
    }

    public static Status toStatus(Throwable t) {
        if (t instanceof StatusRuntimeException e) {
            return e.getStatus(); // a stage's own status, relayed as it is
        }
        if (t instanceof StatusException e) {
            return e.getStatus();
        }
        if (t instanceof InvalidRequestException) {
            return Status.INVALID_ARGUMENT.withDescription(t.getMessage());
        }
        if (t instanceof ModelContractException) {
            return Status.FAILED_PRECONDITION.withDescription(t.getMessage());
        }
        if (t instanceof JobCancelledException || t instanceof CancellationException) {
            return Status.CANCELLED.withDescription(t.getMessage());
        }
        if (t instanceof OutOfMemoryError) {
            return Status.RESOURCE_EXHAUSTED.withDescription("out of memory: try a smaller image or fewer images");
        }
        return Status.INTERNAL.withDescription(t.getClass().getSimpleName() + ": " + t.getMessage()).withCause(t);
    }

    public static StatusRuntimeException toException(Throwable t) {
        return toStatus(t).asRuntimeException();
    }
}
