package org.sdserve.common.grpc;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.ForwardingClientCall;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import java.util.regex.Pattern;
import org.sdserve.common.trace.Tracing;

/**
 * The id of the job a stage call belongs to, carried from the orchestrator to the stages in the {@code sd-job-id}
 * metadata, so that a stage's log lines name the job (grep one id across the four services' logs) and, when traced,
 * its trace. The orchestrator
 * runs each job in a Context holding its id; the stage channels send it; every service puts a plausible one (at
 * most 64 characters of letters, digits and dashes: anything else is ignored, never logged) into the call's Context.
 */
public final class JobIds {
    public static final Context.Key<String> KEY = Context.key("sd-job-id");
    private static final Metadata.Key<String> HEADER = Metadata.Key.of("sd-job-id", Metadata.ASCII_STRING_MARSHALLER);
    private static final Pattern PLAUSIBLE = Pattern.compile("[A-Za-z0-9-]{1,64}");

    private JobIds() {
    }

    /**
     * "job ID: " for a log line of the current call, "job ID [trace TRACE_ID]: " when the call is traced (find its
     * spans by that id), or "" outside a job.
     */
    public static String logPrefix() {
        return logPrefix(KEY.get(), Tracing.traceId());
    }

    /** As {@link #logPrefix()} for a job by its id and trace id (either null when there is none). */
    public static String logPrefix(String jobId, String traceId) {
        if (jobId == null) {
            return "";
        }
        return traceId == null ? "job " + jobId + ": " : "job " + jobId + " [trace " + traceId + "]: ";
    }

    /** Client side: the current Context's job id, as a header of each call. */
    public static ClientInterceptor client() {
        return new ClientInterceptor() {
            @Override
            public <Q, A> ClientCall<Q, A> interceptCall(MethodDescriptor<Q, A> method, CallOptions options,
                                                         Channel next) {
                String id = KEY.get();
                return new ForwardingClientCall.SimpleForwardingClientCall<>(next.newCall(method, options)) {
                    @Override
                    public void start(Listener<A> listener, Metadata headers) {
                        if (id != null) {
                            headers.put(HEADER, id);
                        }
                        super.start(listener, headers);
                    }
                };
            }
        };
    }

    /** Server side: a plausible header into the call's Context. */
    public static ServerInterceptor server() {
        return new ServerInterceptor() {
            @Override
            public <Q, A> ServerCall.Listener<Q> interceptCall(ServerCall<Q, A> call, Metadata headers,
                                                               ServerCallHandler<Q, A> next) {
                String id = headers.get(HEADER);
                if (id == null || !PLAUSIBLE.matcher(id).matches()) {
                    return next.startCall(call, headers);
                }
                return Contexts.interceptCall(Context.current().withValue(KEY, id), call, headers, next);
            }
        };
    }
}
