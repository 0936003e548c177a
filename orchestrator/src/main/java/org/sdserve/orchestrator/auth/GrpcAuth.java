package org.sdserve.orchestrator.auth;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.StatusRuntimeException;
import java.util.Map;
import org.sdserve.orchestrator.core.Caller;
import org.sdserve.proto.v1.DiffusionGrpc;

/**
 * Bearer tokens on the public gRPC API: each Diffusion call carries {@code authorization: Bearer TOKEN}; without
 * one, or with an unknown one, it ends UNAUTHENTICATED before the service sees it; without the method's right,
 * PERMISSION_DENIED. The holder rides in the call's Context ({@link #caller()}) for quotas.
 */
public final class GrpcAuth implements ServerInterceptor {
    private static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization",
            Metadata.ASCII_STRING_MARSHALLER);
    private static final Context.Key<Principal> PRINCIPAL = Context.key("sd-principal");
    private static final Map<String, Right> RIGHTS = Map.of(
            DiffusionGrpc.getGenerateMethod().getFullMethodName(), Right.GENERATE,
            DiffusionGrpc.getWatchMethod().getFullMethodName(), Right.WATCH,
            DiffusionGrpc.getCancelMethod().getFullMethodName(), Right.CANCEL,
            DiffusionGrpc.getListJobsMethod().getFullMethodName(), Right.LIST,
            DiffusionGrpc.getEvaluateMethod().getFullMethodName(), Right.GENERATE);
    private final Tokens tokens;

    public GrpcAuth(Tokens tokens) {
        this.tokens = tokens;
    }

    /** Who makes the current call: the token's holder, or ANONYMOUS when the API takes no tokens. */
    public static Caller caller() {
        Principal p = PRINCIPAL.get();
        return p == null ? Caller.ANONYMOUS : p.caller();
    }

    @Override
    public <Q, A> ServerCall.Listener<Q> interceptCall(ServerCall<Q, A> call, Metadata headers,
                                                       ServerCallHandler<Q, A> next) {
        Principal p;
        try {
            p = tokens.authenticate(headers.get(AUTHORIZATION));
            Right right = RIGHTS.get(call.getMethodDescriptor().getFullMethodName());
            if (right != null) {
                p.require(right);
                if (right == Right.GENERATE) {
                    p.admitSubmission();
                }
            }
        } catch (StatusRuntimeException e) {
            call.close(e.getStatus(), new Metadata());
            return new ServerCall.Listener<>() {
            };
        }
        return Contexts.interceptCall(Context.current().withValue(PRINCIPAL, p), call, headers, next);
    }
}
