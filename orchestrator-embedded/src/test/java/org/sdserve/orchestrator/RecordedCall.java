package org.sdserve.orchestrator;

import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.Predicate;
import org.sdserve.proto.v1.GenerateEvent;
import org.sdserve.proto.v1.GenerateEvent.EventCase;
import org.sdserve.proto.v1.GenerateRequest;
import org.sdserve.proto.v1.Stage;

/**
 * A Generate (or Watch) call seen from the client: the events as they come, its end, and optionally the client
 * dropping it once {@code dropWhen} holds for an event, or reading only when asked ({@link #manual()}).
 */
final class RecordedCall implements ClientResponseObserver<GenerateRequest, GenerateEvent> {
    final List<GenerateEvent> events = Collections.synchronizedList(new ArrayList<>());
    final CompletableFuture<Status> closed = new CompletableFuture<>();
    /** Completes at the first denoising progress. */
    final CompletableFuture<Void> progressed = new CompletableFuture<>();
    final CompletableFuture<ClientCallStreamObserver<GenerateRequest>> started = new CompletableFuture<>();
    private final Predicate<GenerateEvent> dropWhen;
    private final boolean manual;

    private RecordedCall(Predicate<GenerateEvent> dropWhen, boolean manual) {
        this.dropWhen = dropWhen;
        this.manual = manual;
    }

    /** Reads every event. */
    RecordedCall() {
        this(e -> false, false);
    }

    /** Cancels the call from the client once an event satisfies {@code dropWhen}. */
    static RecordedCall droppingWhen(Predicate<GenerateEvent> dropWhen) {
        return new RecordedCall(dropWhen, false);
    }

    /** Takes the first event, then one more per {@code started.get().request(1)}. */
    static RecordedCall manual() {
        return new RecordedCall(e -> false, true);
    }

    static boolean denoisingStep(GenerateEvent e, int step) {
        return e.hasProgress() && e.getProgress().getStage() == Stage.STAGE_DENOISING
                && e.getProgress().getStep() == step;
    }

    @Override
    public void beforeStart(ClientCallStreamObserver<GenerateRequest> requestStream) {
        if (manual) {
            requestStream.disableAutoRequestWithInitial(1);
        }
        started.complete(requestStream);
    }

    @Override
    public void onNext(GenerateEvent e) {
        events.add(e);
        if (e.hasProgress() && e.getProgress().getStage() == Stage.STAGE_DENOISING) {
            progressed.complete(null);
        }
        if (dropWhen.test(e)) {
            started.join().cancel("the test drops the stream", null);
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

    List<GenerateEvent> of(EventCase kind) {
        synchronized (events) {
            return events.stream().filter(e -> e.getEventCase() == kind).toList();
        }
    }

    String jobId() {
        return events.get(0).getAccepted().getJobId();
    }

    long lastSeq() {
        synchronized (events) {
            return events.get(events.size() - 1).getSeq();
        }
    }

    /** The step of the last denoising progress received, 0 before the first. */
    int lastStep() {
        synchronized (events) {
            for (int i = events.size() - 1; i >= 0; i--) {
                GenerateEvent e = events.get(i);
                if (e.hasProgress() && e.getProgress().getStage() == Stage.STAGE_DENOISING) {
                    return e.getProgress().getStep();
                }
            }
            return 0;
        }
    }
}
