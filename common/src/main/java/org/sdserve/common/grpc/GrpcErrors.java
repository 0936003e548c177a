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
    private static final System.Logger LOG = System.getLogger(GrpcErrors.class.getName());

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
            LOG.log(System.Logger.Level.WARNING, "answered RESOURCE_EXHAUSTED: out of memory", t);
            return Status.RESOURCE_EXHAUSTED.withDescription("out of memory: try a smaller image or fewer images");
        }
        // a bug, not bad input: logged with its stack, answered without it
        LOG.log(System.Logger.Level.ERROR, "answered INTERNAL", t);
        String why = String.valueOf(t.getMessage());
        return Status.INTERNAL.withDescription(t.getClass().getSimpleName() + ": " + (why.length() <= 200 ? why
                : why.substring(0, 200) + "...")).withCause(t);
    }

    public static StatusRuntimeException toException(Throwable t) {
        return toStatus(t).asRuntimeException();
    }
}
