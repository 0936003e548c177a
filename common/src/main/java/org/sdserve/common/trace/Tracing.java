package org.sdserve.common.trace;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.MethodDescriptor;
import io.grpc.ServerInterceptor;
import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanContext;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.instrumentation.grpc.v1_6.GrpcTelemetry;

/**
 * This process's OpenTelemetry tracing (the API only: the SDK and its OTLP exporter are the application's; Quarkus
 * provides them, off unless {@code quarkus.otel.sdk.disabled=false}). Until {@link #use} it is off: tests, the CLI
 * and benchmarks trace nothing.
 *
 * <p>gRPC calls are traced by opentelemetry-java-instrumentation's grpc-1.6 interceptors, which carry the W3C
 * {@code traceparent} in the call's metadata: a server span per call to a served service (a child of the caller's
 * span when it sent one), and a client span per stage call made inside a traced job. Background calls (health
 * checks, Describe polls) start no trace of their own. Message events are off: a Denoise stream sends hundreds of
 * messages, and the denoiser records each step as an event itself.
 */
public final class Tracing {
    /** The instrumentation scope of this project's own spans. */
    public static final String SCOPE = "org.sdserve";
    private static volatile State state = new State(OpenTelemetry.noop(), false);

    private record State(OpenTelemetry otel, boolean on, Tracer tracer, GrpcTelemetry grpc) {
        State(OpenTelemetry otel, boolean on) {
            this(otel, on, otel.getTracer(SCOPE), GrpcTelemetry.builder(otel).setEmitMessageEvents(false).build());
        }
    }

    private Tracing() {
    }

    /**
     * Traces with {@code otel} from now on: call at startup, before building servers and channels (their
     * interceptors are taken when they are built).
     */
    public static void use(OpenTelemetry otel) {
        state = new State(otel, true);
    }

    /**
     * {@link #use} when {@code exported}, else tracing off (the default). Quarkus' OpenTelemetry with
     * {@code quarkus.otel.sdk.disabled=true} exports nothing but still records spans (its HTTP server spans among
     * them): with it off, no trace id appears in this process's log lines, metrics exemplars or stage calls.
     */
    public static void use(OpenTelemetry otel, boolean exported) {
        state = exported ? new State(otel, true) : new State(OpenTelemetry.noop(), false);
    }

    /** Whether {@link #use} turned tracing on. */
    public static boolean on() {
        return state.on;
    }

    public static Tracer tracer() {
        return state.tracer;
    }

    /** Server side: a span per call, its context current in the call's callbacks. */
    public static ServerInterceptor server() {
        return state.grpc.newServerInterceptor();
    }

    /** Client side: a span per call made while a span is current (inside a traced job); other calls as they are. */
    public static ClientInterceptor client() {
        State now = state;
        if (!now.on) {
            return Tracing::untraced;
        }
        ClientInterceptor traced = now.grpc.newClientInterceptor();
        return new ClientInterceptor() {
            @Override
            public <Q, A> ClientCall<Q, A> interceptCall(MethodDescriptor<Q, A> method, CallOptions options,
                                                         Channel next) {
                return Span.current().getSpanContext().isValid() ? traced.interceptCall(method, options, next)
                        : next.newCall(method, options);
            }
        };
    }

    private static <Q, A> ClientCall<Q, A> untraced(MethodDescriptor<Q, A> method, CallOptions options, Channel next) {
        return next.newCall(method, options);
    }

    /** The current span's trace id (32 hex digits), or null when tracing is off or this trace is not sampled. */
    public static String traceId() {
        SpanContext c = Span.current().getSpanContext();
        return state.on && c.isValid() && c.isSampled() ? c.getTraceId() : null;
    }
}
