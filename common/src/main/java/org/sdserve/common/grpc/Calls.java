package org.sdserve.common.grpc;

import io.grpc.Context;
import io.grpc.stub.StreamObserver;
import java.util.function.Supplier;
import org.sdserve.common.onnx.RunStop;

/** Helpers for the thin gRPC adapters: run the core, answer once, map any failure through {@link GrpcErrors}. */
public final class Calls {
    private Calls() {
    }

    /**
     * A stop fired when the current call's Context is cancelled (the caller cancelled, went away, or its deadline
     * passed), for the core's ONNX Runtime runs. grpc-java also cancels a server call's Context when the call
     * completes, by which time nothing runs under the stop.
     */
    public static RunStop stopWhenCancelled() {
        RunStop stop = new RunStop();
        Context.current().addListener(c -> stop.stop(), Runnable::run);
        return stop;
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
