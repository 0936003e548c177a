package org.sdserve.orchestrator.http;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import jakarta.ws.rs.sse.OutboundSseEvent;
import jakarta.ws.rs.sse.Sse;
import jakarta.ws.rs.sse.SseBroadcaster;
import jakarta.ws.rs.sse.SseEventSink;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.sdserve.orchestrator.core.JobEvent;
import org.sdserve.orchestrator.core.JobSubscriber;
import org.sdserve.orchestrator.core.Subscription;

/**
 * One Server-Sent Events response following a job: each event as {@code id: <seq>}, {@code event: <name>},
 * {@code data: <json>}; a {@code failed} event (an {@link ApiError}) before the end of a job that did not complete.
 * Flow control as the gRPC stream's: at most {@link #SLACK_EVENTS} writes in flight, the job's log holds the rest
 * (superseded progress and previews are skipped). A comment every {@link #KEEP_ALIVE_S} seconds keeps proxies from
 * closing a quiet stream (a queued job) and finds a client that left; the client leaving detaches the job.
 */
final class SseStream implements JobSubscriber {
    static final int SLACK_EVENTS = 8;
    static final long KEEP_ALIVE_S = 15;
    /** Told to the client with its first event: how soon EventSource reconnects after a drop (browsers: ~3 s). */
    static final long RECONNECT_MS = 1000;

    private volatile String jobId; // null until the accepted event when the stream submitted the job
    private final SseEventSink sink;
    private final Sse sse;
    private final ObjectMapper json;
    private final AtomicInteger inFlight = new AtomicInteger();
    private final SseBroadcaster closeWatch;
    private final ScheduledFuture<?> keepAlive;
    private volatile CompletionStage<?> last = CompletableFuture.completedFuture(null);
    private boolean retryTold; // written by the one thread that delivers events at a time
    private Subscription subscription; // guarded by this
    private boolean gone; // guarded by this

    SseStream(String jobId, SseEventSink sink, Sse sse, ObjectMapper json, ScheduledExecutorService timers) {
        this.jobId = jobId;
        this.sink = sink;
        this.sse = sse;
        this.json = json;
        // JAX-RS tells of a sink closed by its client only through a broadcaster it is registered with
        this.closeWatch = sse.newBroadcaster();
        closeWatch.register(sink);
        closeWatch.onClose(s -> left());
        closeWatch.onError((s, t) -> left());
        this.keepAlive = timers.scheduleWithFixedDelay(() -> {
            if (inFlight.get() == 0) {
                send(sse.newEventBuilder().comment("keep-alive").build());
            }
        }, KEEP_ALIVE_S, KEEP_ALIVE_S, TimeUnit.SECONDS);
    }

    void follow(Subscription s) {
        boolean left;
        synchronized (this) {
            subscription = s;
            left = gone;
        }
        if (left) {
            s.close();
        } else {
            s.drain(); // writes that completed before this could not wake it: the replay may have filled the stream
        }
    }

    /** The job could not be followed (an unknown id, a refused submission): nothing to keep alive. */
    void abandon() {
        keepAlive.cancel(false);
    }

    private void left() {
        keepAlive.cancel(false);
        Subscription s;
        synchronized (this) {
            gone = true;
            s = subscription;
        }
        if (s != null) {
            s.close();
        }
    }

    @Override
    public boolean ready() {
        return inFlight.get() < SLACK_EVENTS;
    }

    @Override
    public void event(long seq, JobEvent event) {
        if (event instanceof JobEvent.Accepted a) {
            jobId = a.jobId();
        }
        OutboundSseEvent.Builder b = sse.newEventBuilder().id(Long.toString(seq)).name(Events.name(event))
                .data(text(Events.json(jobId, event)));
        if (!retryTold) {
            b.reconnectDelay(RECONNECT_MS);
            retryTold = true;
        }
        send(b.build());
    }

    @Override
    public void end(Throwable failure) {
        keepAlive.cancel(false);
        if (failure != null) {
            send(sse.newEventBuilder().name("failed").data(text(ApiError.of(failure))).build());
        }
        last.whenComplete((v, t) -> sink.close());
    }

    /** One line of JSON: the event's data (SSE data is text; JSON escapes every line break). */
    private String text(Object value) {
        try {
            return json.writeValueAsString(value);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("an event that does not serialize: " + value.getClass(), e);
        }
    }

    private void send(OutboundSseEvent e) {
        if (sink.isClosed()) {
            left();
            return;
        }
        inFlight.incrementAndGet();
        CompletionStage<?> sent = sink.send(e);
        last = sent;
        sent.whenComplete((v, t) -> {
            boolean full = inFlight.getAndDecrement() >= SLACK_EVENTS;
            if (t != null) {
                left();
            } else if (full) {
                Subscription s;
                synchronized (this) {
                    s = subscription;
                }
                if (s != null) {
                    s.drain(); // it stopped at a full stream: go on
                }
            }
        });
    }
}
