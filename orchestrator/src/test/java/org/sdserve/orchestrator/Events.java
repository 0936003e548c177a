package org.sdserve.orchestrator;

import io.grpc.Channel;
import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.sdserve.common.image.RgbImage;
import org.sdserve.proto.v1.DiffusionGrpc;
import org.sdserve.proto.v1.GenerateEvent;
import org.sdserve.proto.v1.GenerateRequest;
import org.sdserve.proto.v1.Stage;

/** The whole event stream of one Generate call, collected. */
record Events(List<GenerateEvent> all) {
    /**
     * Starts a call and cancels it from the client when the denoising progress of {@code step} arrives; the
     * future completes with the status the call ended with.
     */
    static CompletableFuture<Status> cancelAtStep(Channel channel, GenerateRequest request, int step) {
        CompletableFuture<Status> closed = new CompletableFuture<>();
        DiffusionGrpc.newStub(channel).generate(request, new ClientResponseObserver<GenerateRequest, GenerateEvent>() {
            private ClientCallStreamObserver<GenerateRequest> call;

            @Override
            public void beforeStart(ClientCallStreamObserver<GenerateRequest> requestStream) {
                call = requestStream;
            }

            @Override
            public void onNext(GenerateEvent e) {
                if (e.hasProgress() && e.getProgress().getStage() == Stage.STAGE_DENOISING
                        && e.getProgress().getStep() == step) {
                    call.cancel("the test cancels at step " + step, null);
                }
            }

            @Override
            public void onError(Throwable t) {
                closed.complete(Status.fromThrowable(t));
            }

            @Override
            public void onCompleted() {
                closed.complete(Status.OK);
            }
        });
        return closed;
    }

    static Events generate(Channel channel, GenerateRequest request) {
        List<GenerateEvent> events = new ArrayList<>();
        DiffusionGrpc.newBlockingStub(channel).withDeadlineAfter(120, TimeUnit.SECONDS).generate(request)
                .forEachRemaining(events::add);
        return new Events(events);
    }

    List<GenerateEvent> of(GenerateEvent.EventCase kind) {
        return all.stream().filter(e -> e.getEventCase() == kind).toList();
    }

    byte[] png(int index) {
        return of(GenerateEvent.EventCase.IMAGE).get(index).getImage().getPng().toByteArray();
    }

    RgbImage image(int index) {
        return RgbImage.fromPng(png(index), "image");
    }

    GenerateEvent.EventCase first() {
        return all.get(0).getEventCase();
    }

    GenerateEvent.EventCase last() {
        return all.get(all.size() - 1).getEventCase();
    }
}
