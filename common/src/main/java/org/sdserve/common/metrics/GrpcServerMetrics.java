package org.sdserve.common.metrics;

import io.grpc.ForwardingServerCall;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.opentelemetry.context.Context;
import io.opentelemetry.context.Scope;
import java.util.concurrent.TimeUnit;

/**
 * Every call a service answers, as one timer per method and status: {@code grpc.server.call.duration} (seconds,
 * with a histogram) tagged {@code grpc.method} (full name) and {@code grpc.status} (code name), the names of gRPC's
 * own OpenTelemetry metrics (gRFC A66), so that dashboards written for those read these. Its count is the calls by
 * method and status. Only the services' registered methods reach it: the tag values are bounded. With traces on,
 * each bucket's exemplar (OpenMetrics) names the trace of a call it counted.
 */
public final class GrpcServerMetrics implements ServerInterceptor {
    private final MeterRegistry registry;

    public GrpcServerMetrics(MeterRegistry registry) {
        this.registry = registry;
    }

    @Override
    public <Q, A> ServerCall.Listener<Q> interceptCall(ServerCall<Q, A> call, Metadata headers,
                                                       ServerCallHandler<Q, A> next) {
        long start = System.nanoTime();
        String method = call.getMethodDescriptor().getFullMethodName();
        Context traced = Context.current(); // the call's span (Tracing), for the exemplar
        return next.startCall(new ForwardingServerCall.SimpleForwardingServerCall<>(call) {
            @Override
            public void close(Status status, Metadata trailers) {
                try (Scope ignored = traced.makeCurrent()) { // close may come from another thread (the batcher's)
                    Timer.builder("grpc.server.call.duration").description("gRPC calls answered, by method and "
                            + "status").tag("grpc.method", method).tag("grpc.status", status.getCode().name())
                            .publishPercentileHistogram().register(registry)
                            .record(System.nanoTime() - start, TimeUnit.NANOSECONDS);
                }
                super.close(status, trailers);
            }
        }, headers);
    }
}
