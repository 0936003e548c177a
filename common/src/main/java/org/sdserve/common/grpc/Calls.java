package org.sdserve.common.grpc;

import io.grpc.stub.StreamObserver;
import java.util.function.Supplier;

/** Helpers for the thin gRPC adapters: run the core, answer once, map any failure through {@link GrpcErrors}. */
public final class Calls {
    private Calls() {
    }

    public static <T> void unary(StreamObserver<T> out, Supplier<T> work) {
        T response;
        try {
            response = work.get();
        } catch (Throwable t) {
            out.onError(GrpcErrors.toException(t));
            return;
        }
        out.onNext(response);
        out.onCompleted();
    }
}
