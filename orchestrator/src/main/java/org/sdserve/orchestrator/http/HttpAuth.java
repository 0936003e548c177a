package org.sdserve.orchestrator.http;

import io.grpc.StatusRuntimeException;
import jakarta.inject.Inject;
import jakarta.ws.rs.container.ContainerRequestContext;
import jakarta.ws.rs.core.Response;
import java.util.Optional;
import org.jboss.resteasy.reactive.server.ServerRequestFilter;
import org.sdserve.orchestrator.app.OrchestratorServer;
import org.sdserve.orchestrator.auth.Principal;
import org.sdserve.orchestrator.auth.Right;
import org.sdserve.orchestrator.auth.Tokens;

/**
 * The same bearer tokens on the HTTP API as on gRPC: {@code Authorization: Bearer TOKEN}, or {@code ?access_token=}
 * where a client cannot set headers (a browser's EventSource and img). 401 (with WWW-Authenticate) without a known
 * token, 403 without the route's right, 429 past the token's rate; the page and its files stay public.
 */
@jakarta.inject.Singleton
public class HttpAuth {
    @Inject
    OrchestratorServer server;
    @Inject
    RequestCaller caller;

    @ServerRequestFilter(preMatching = true)
    public Optional<Response> authenticate(ContainerRequestContext request) {
        Tokens tokens = server.tokens();
        String path = request.getUriInfo().getPath();
        if (tokens == null || !path.startsWith("/v1/")) {
            return Optional.empty();
        }
        try {
            Principal p = tokens.authenticate(authorization(request.getHeaderString("Authorization"),
                    request.getUriInfo().getQueryParameters().getFirst("access_token")));
            Right right = right(request.getMethod(), path);
            if (right != null) {
                p.require(right);
                if (right == Right.GENERATE) {
                    p.admitSubmission();
                }
            }
            caller.set(p.caller()); // for the resource: its jobs, its quota
            return Optional.empty();
        } catch (StatusRuntimeException e) {
            Response r = ApiError.of(e.getStatus()).response();
            return Optional.of(r.getStatus() != 401 ? r : Response.fromResponse(r)
                    .header("WWW-Authenticate", "Bearer realm=\"sdserve\"").build());
        }
    }

    private static String authorization(String header, String accessToken) {
        return header != null || accessToken == null ? header : "Bearer " + accessToken;
    }

    /** The right a route needs; null: any known token (the model's description). */
    private static Right right(String method, String path) {
        if (path.equals("/v1/jobs") || path.equals("/v1/jobs/")) {
            return method.equals("POST") ? Right.GENERATE : Right.LIST;
        }
        if (path.startsWith("/v1/evaluations")) {
            return Right.GENERATE;
        }
        if (path.startsWith("/v1/jobs/")) {
            return method.equals("DELETE") ? Right.CANCEL : Right.WATCH;
        }
        return null;
    }
}
