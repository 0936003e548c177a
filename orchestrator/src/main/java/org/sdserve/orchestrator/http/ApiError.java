package org.sdserve.orchestrator.http;

import io.grpc.Status;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.eclipse.microprofile.openapi.annotations.media.Schema;
import org.sdserve.common.grpc.GrpcErrors;
import org.sdserve.proto.v1.EvaluateRequest;
import org.sdserve.proto.v1.GenerateRequest;

/**
 * Every error the HTTP API gives, as the body of an error status or the data of a job's {@code failed} event: the
 * gRPC code and the message the gRPC API gives for the same cause, with the HTTP status of that code (the mapping
 * of google.rpc.Code, as grpc-gateway uses), and, when the message concerns one request field, its name.
 */
@Schema(name = "Error", description = "status: the HTTP status; code: the gRPC status code of the same answer")
public record ApiError(int status, String code, String message,
                       @Schema(description = "the request field the message concerns, when it concerns one")
                       String field) {
    private static final Pattern LEADING_NAME = Pattern.compile("^([a-z_]+)\\b");

    static ApiError of(Throwable t) {
        return of(GrpcErrors.toStatus(t));
    }

    static ApiError of(Status s) {
        String message = s.getDescription() == null ? s.getCode().name().toLowerCase() : s.getDescription();
        return new ApiError(httpStatus(s.getCode()), s.getCode().name(), message,
                s.getCode() == Status.Code.INVALID_ARGUMENT ? field(message) : null);
    }

    Response response() {
        Response.ResponseBuilder r = Response.status(status).type(MediaType.APPLICATION_JSON_TYPE).entity(this);
        if (status == 429 || status == 503) {
            r.header("Retry-After", "1");
        }
        return r.build();
    }

    /** The request field a validator message begins with ("steps must be in [1, 200], got 0" -> steps). */
    static String field(String message) {
        Matcher m = LEADING_NAME.matcher(message);
        if (m.find() && (GenerateRequest.getDescriptor().findFieldByName(m.group(1)) != null
                || EvaluateRequest.getDescriptor().findFieldByName(m.group(1)) != null)) {
            return m.group(1);
        }
        return null;
    }

    /** google.rpc.Code's HTTP mapping. */
    static int httpStatus(Status.Code code) {
        return switch (code) {
            case OK -> 200;
            case CANCELLED -> 499;
            case INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE -> 400;
            case DEADLINE_EXCEEDED -> 504;
            case NOT_FOUND -> 404;
            case ALREADY_EXISTS, ABORTED -> 409;
            case PERMISSION_DENIED -> 403;
            case UNAUTHENTICATED -> 401;
            case RESOURCE_EXHAUSTED -> 429;
            case UNIMPLEMENTED -> 501;
            case UNAVAILABLE -> 503;
            case UNKNOWN, INTERNAL, DATA_LOSS -> 500;
        };
    }
}
