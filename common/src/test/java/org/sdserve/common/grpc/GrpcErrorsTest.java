package org.sdserve.common.grpc;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.grpc.Status;
import org.junit.jupiter.api.Test;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.common.error.JobCancelledException;
import org.sdserve.common.error.ModelContractException;

class GrpcErrorsTest {
    @Test
    void mapsDomainErrorsToStatuses() {
        assertEquals(Status.Code.INVALID_ARGUMENT, GrpcErrors.toStatus(new InvalidRequestException("x")).getCode());
        assertEquals("x", GrpcErrors.toStatus(new InvalidRequestException("x")).getDescription());
        assertEquals(Status.Code.FAILED_PRECONDITION, GrpcErrors.toStatus(new ModelContractException("m")).getCode());
        assertEquals(Status.Code.CANCELLED, GrpcErrors.toStatus(new JobCancelledException("c")).getCode());
        assertEquals(Status.Code.UNAVAILABLE,
                GrpcErrors.toStatus(Status.UNAVAILABLE.withDescription("down").asRuntimeException()).getCode());
        Status internal = GrpcErrors.toStatus(new IllegalStateException("boom"));
        assertEquals(Status.Code.INTERNAL, internal.getCode());
        assertEquals("IllegalStateException: boom", internal.getDescription());
    }
}
