package org.sdserve.common.grpc;

import io.grpc.ForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerMethodDefinition;
import io.grpc.ServerServiceDefinition;
import io.grpc.ServiceDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;

/**
 * Request bytes that do not parse as the method's message (invalid UTF-8 in a string, a stray tag) get
 * INVALID_ARGUMENT "the request is not a valid sd.v1.X message". Without this, grpc-java's server answers UNKNOWN
 * ("Application error processing RPC") and logs a SEVERE stack trace for every such request: the request
 * marshaller's parse error escapes the call listener. Here the marshaller gives null for bytes that do not parse,
 * and the listener answers the null before the service sees it.
 */
final class UnparseableRequests {
    private UnparseableRequests() {
    }

    /** The same service, its methods' requests parsed leniently as above; responses and schema unchanged. */
    static ServerServiceDefinition guard(ServerServiceDefinition service) {
        ServiceDescriptor original = service.getServiceDescriptor();
        List<ServerMethodDefinition<?, ?>> methods = new ArrayList<>();
        ServiceDescriptor.Builder descriptor = ServiceDescriptor.newBuilder(original.getName())
                .setSchemaDescriptor(original.getSchemaDescriptor());
        for (ServerMethodDefinition<?, ?> m : service.getMethods()) {
            ServerMethodDefinition<?, ?> guarded = guard(m);
            methods.add(guarded);
            descriptor.addMethod(guarded.getMethodDescriptor());
        }
        ServerServiceDefinition.Builder b = ServerServiceDefinition.builder(descriptor.build());
        methods.forEach(b::addMethod);
        return b.build();
    }

    private static <Q, A> ServerMethodDefinition<Q, A> guard(ServerMethodDefinition<Q, A> m) {
        MethodDescriptor<Q, A> md = m.getMethodDescriptor();
        String type = md.getRequestMarshaller() instanceof MethodDescriptor.ReflectableMarshaller<?> r
                ? r.getMessageClass().getSimpleName() : "request";
        String what = "the request is not a valid " + md.getServiceName() + "/" + md.getBareMethodName() + " "
                + type + " (its bytes do not parse)";
        MethodDescriptor<Q, A> lenient = md.toBuilder(new Lenient<>(md.getRequestMarshaller()),
                md.getResponseMarshaller()).build();
        return ServerMethodDefinition.create(lenient, new Refusing<>(m.getServerCallHandler(), what));
    }

    /** The method's marshaller, but null instead of an exception for bytes that do not parse. */
    private record Lenient<T>(MethodDescriptor.Marshaller<T> inner) implements MethodDescriptor.Marshaller<T> {
        @Override
        public InputStream stream(T value) {
            return inner.stream(value);
        }

        @Override
        public T parse(InputStream stream) {
            try {
                return inner.parse(stream);
            } catch (StatusRuntimeException | IllegalArgumentException e) {
                return null;
            }
        }
    }

    /** Closes a call whose request did not parse with INVALID_ARGUMENT; the service never sees it. */
    private record Refusing<Q, A>(ServerCallHandler<Q, A> next, String what) implements ServerCallHandler<Q, A> {
        @Override
        public ServerCall.Listener<Q> startCall(ServerCall<Q, A> call, Metadata headers) {
            return new ForwardingServerCallListener.SimpleForwardingServerCallListener<>(next.startCall(call,
                    headers)) {
                private boolean refused;

                @Override
                public void onMessage(Q message) {
                    if (message == null) {
                        if (!refused) {
                            refused = true;
                            call.close(Status.INVALID_ARGUMENT.withDescription(what), new Metadata());
                        }
                    } else if (!refused) {
                        super.onMessage(message);
                    }
                }

                @Override
                public void onHalfClose() {
                    if (!refused) {
                        super.onHalfClose();
                    }
                }
            };
        }
    }
}
