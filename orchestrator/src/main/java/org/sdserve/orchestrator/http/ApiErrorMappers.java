package org.sdserve.orchestrator.http;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import io.grpc.Status;
import jakarta.ws.rs.WebApplicationException;
import jakarta.ws.rs.core.Response;
import java.util.stream.Collectors;
import org.jboss.resteasy.reactive.server.ServerExceptionMapper;
import org.sdserve.common.error.InvalidRequestException;

/**
 * Whatever a request ends with becomes an {@link ApiError}: the engine's statuses and exceptions by their gRPC
 * mapping, JSON that does not parse or does not fit as 400 with the field it concerns, and the framework's own
 * answers (unknown path, wrong method or media type, body too large) with their status. Client text is quoted only
 * through {@link InvalidRequestException#shown}.
 */
public final class ApiErrorMappers {
    // the specific Jackson types too: quarkus-rest-jackson maps them itself (an empty 400) unless told otherwise
    @ServerExceptionMapper
    public Response unknownField(UnrecognizedPropertyException e) {
        return json(e);
    }

    @ServerExceptionMapper
    public Response mismatched(MismatchedInputException e) {
        return json(e);
    }

    @ServerExceptionMapper
    public Response json(JsonProcessingException e) {
        String message;
        String field = null;
        if (e instanceof UnrecognizedPropertyException u) {
            message = "unknown field \"" + InvalidRequestException.shown(u.getPropertyName()) + "\"; known fields: "
                    + u.getKnownPropertyIds().stream().map(String::valueOf).sorted()
                    .collect(Collectors.joining(", "));
        } else if (e instanceof MismatchedInputException m && !m.getPath().isEmpty()) {
            field = path(m);
            message = field + " must be " + expected(m.getTargetType());
        } else if (e instanceof MismatchedInputException m) {
            message = "the body must be a JSON object with at least \"prompt\"";
        } else if (e instanceof JsonMappingException m && !m.getPath().isEmpty()) {
            field = path(m);
            message = field + " has a value that does not fit";
        } else {
            message = "the body is not valid JSON" + (e.getLocation() == null ? "" : " (line "
                    + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr() + ")");
        }
        return new ApiError(400, Status.Code.INVALID_ARGUMENT.name(), message, field).response();
    }

    @ServerExceptionMapper
    public Response web(WebApplicationException e) {
        if (e.getCause() instanceof JsonProcessingException j) { // a body that did not parse, wrapped
            return json(j);
        }
        int status = e.getResponse().getStatus();
        String reason = e.getResponse().getStatusInfo().getReasonPhrase();
        String code = switch (status) {
            case 404 -> Status.Code.NOT_FOUND.name();
            case 405, 501 -> Status.Code.UNIMPLEMENTED.name();
            case 413 -> Status.Code.RESOURCE_EXHAUSTED.name();
            case 503 -> Status.Code.UNAVAILABLE.name();
            default -> status >= 500 ? Status.Code.INTERNAL.name() : Status.Code.INVALID_ARGUMENT.name();
        };
        return new ApiError(status, code, reason == null ? "HTTP " + status : reason.toLowerCase(), null).response();
    }

    @ServerExceptionMapper
    public Response other(Exception e) {
        return ApiError.of(e).response();
    }

    private static String path(JsonMappingException m) {
        return m.getPath().stream().map(r -> r.getFieldName() != null ? r.getFieldName() : "[" + r.getIndex() + "]")
                .collect(Collectors.joining("."));
    }

    private static String expected(Class<?> type) {
        if (type == null) {
            return "of another type";
        }
        if (type == Long.class || type == long.class || type == Integer.class || type == int.class) {
            return "an integer";
        }
        if (type == Float.class || type == float.class || type == Double.class || type == double.class) {
            return "a number";
        }
        if (type == String.class) {
            return "a string";
        }
        return "a " + type.getSimpleName();
    }
}
