package org.sdserve.orchestrator.http;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;
import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.Context;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.sse.OutboundSseEvent;
import jakarta.ws.rs.sse.Sse;
import jakarta.ws.rs.sse.SseBroadcaster;
import jakarta.ws.rs.sse.SseEventSink;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import org.eclipse.microprofile.openapi.annotations.Operation;
import org.eclipse.microprofile.openapi.annotations.media.Content;
import org.eclipse.microprofile.openapi.annotations.media.Schema;
import org.eclipse.microprofile.openapi.annotations.responses.APIResponse;
import org.eclipse.microprofile.openapi.annotations.tags.Tag;
import org.sdserve.orchestrator.app.OrchestratorServer;
import org.sdserve.orchestrator.core.Evaluator;
import org.sdserve.proto.v1.EvaluateRequest;
import org.sdserve.proto.v1.EvaluationProgress;
import org.sdserve.proto.v1.EvaluationResult;

/**
 * Evaluation runs over HTTP: Diffusion.Evaluate's request, checks and figures, its stream as Server-Sent Events
 * ({@code progress}, then {@code result}, or {@code failed}). A client that leaves cancels the run.
 */
@Path("/v1/evaluations")
@Tag(name = "evaluations")
public class EvaluationsResource {
    @Inject
    OrchestratorServer server;
    @Inject
    ObjectMapper json;
    @Inject
    RequestCaller caller;

    @POST
    @Consumes(MediaType.APPLICATION_JSON)
    @Produces(MediaType.SERVER_SENT_EVENTS)
    @Operation(summary = "Run an evaluation and follow it", description = "As Diffusion.Evaluate: generates the "
            + "images as jobs of this server, embeds them with the VAE stage's feature extractor, and measures FID, "
            + "KID, precision, recall and IS against its reference features. Events: progress (the latest, to a slow "
            + "reader), then result, or failed (an Error). Refused before the stream with 400 (a bad field, or no "
            + "extractor), 429 (max-evaluations runs already)")
    @APIResponse(responseCode = "200", description = "the event stream",
            content = @Content(mediaType = MediaType.SERVER_SENT_EVENTS))
    @APIResponse(responseCode = "400", description = "a field outside the contract",
            content = @Content(mediaType = MediaType.APPLICATION_JSON,
                    schema = @Schema(implementation = ApiError.class)))
    @APIResponse(responseCode = "429", description = "every evaluation slot is taken",
            content = @Content(mediaType = MediaType.APPLICATION_JSON,
                    schema = @Schema(implementation = ApiError.class)))
    public void evaluate(EvaluateBody body, @Context SseEventSink sink, @Context Sse sse) {
        EvaluateRequest request = body == null ? EvaluateRequest.getDefaultInstance() : body.toProto();
        Evaluator evaluator = server.evaluator();
        Stream stream = new Stream(sink, sse, json, JobsResource.TIMERS);
        try {
            stream.follow(evaluator.start(request, null, caller.get(), stream));
        } catch (RuntimeException e) {
            stream.abandon(); // refused: an error response, and nothing to keep alive
            throw e;
        }
    }

    @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
    @Schema(name = "EvaluationProgress")
    public record Progress(int imagesDone, int imagesTotal, long elapsedMs, long estimatedRemainingMs,
                           @Schema(description = "every image is embedded: the measures are being computed")
                           boolean measuring) {
        static Progress of(EvaluationProgress p) {
            return new Progress(p.getImagesDone(), p.getImagesTotal(), p.getElapsedMs(), p.getEstimatedRemainingMs(),
                    p.getMeasuring());
        }
    }

    @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
    @Schema(name = "EvaluationResult", description = "the measures of the run's images against the extractor's "
            + "reference features")
    public record Result(@Schema(description = "the request with its defaults filled in") Resolved resolved,
                         String extractor, int referenceImages, double fid, double kid, double precision,
                         double recall,
                         @Schema(description = "null for an extractor without logits") Double inceptionScore,
                         Double inceptionScoreStd,
                         @Schema(description = "the demo prompt set only: shares of images whose judged attribute "
                                 + "the prompt named") Adherence adherence,
                         long totalMs) {
        static Result of(EvaluationResult r) {
            EvaluateRequest q = r.getResolved();
            return new Result(new Resolved(q.getImages(), q.getSteps(), q.getScheduler(), q.getGuidanceScale(),
                    q.getSeed(), q.getImagesPerJob(), q.getWidth(), q.getHeight()),
                    r.getExtractor(), r.getReferenceImages(), r.getFid(), r.getKid(), r.getPrecision(), r.getRecall(),
                    r.hasInceptionScore() ? r.getInceptionScore() : null,
                    r.hasInceptionScore() ? r.getInceptionScoreStd() : null,
                    r.hasAdherence() ? new Adherence(r.getAdherence().getColour(), r.getAdherence().getBackground(),
                            r.getAdherence().getShape(), r.getAdherence().getSize()) : null, r.getTotalMs());
        }
    }

    @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
    @Schema(name = "EvaluationResolved", description = "0 for width and height: the model's default size; the "
            + "prompts are not echoed")
    public record Resolved(int images, int steps, String scheduler, float guidanceScale, long seed,
                           int imagesPerJob, int width, int height) {
    }

    @Schema(name = "PromptAdherence")
    public record Adherence(double colour, double background, double shape, double size) {
    }

    /**
     * One SSE response following a run: one progress event in flight at most (a newer one replaces a waiting one),
     * the result or failure after it, then the end; the client leaving cancels the run.
     */
    private static final class Stream implements Evaluator.Observer {
        private final SseEventSink sink;
        private final Sse sse;
        private final ObjectMapper json;
        private final SseBroadcaster closeWatch;
        private final ScheduledFuture<?> keepAlive;
        private Evaluator.Run run; // guarded by this
        private boolean gone; // guarded by this
        private boolean sending; // guarded by this: a progress event is on its way
        private OutboundSseEvent pending; // guarded by this: the latest progress waiting for it
        private OutboundSseEvent last; // guarded by this: the result or failure, once it came

        Stream(SseEventSink sink, Sse sse, ObjectMapper json, ScheduledExecutorService timers) {
            this.sink = sink;
            this.sse = sse;
            this.json = json;
            this.closeWatch = sse.newBroadcaster(); // how JAX-RS tells of a sink its client closed
            closeWatch.register(sink);
            closeWatch.onClose(s -> left());
            closeWatch.onError((s, t) -> left());
            // a comment when nothing was sent for a while (queued jobs, the measures of a large run): proxies keep
            // the stream open, and a client that left is found
            this.keepAlive = timers.scheduleWithFixedDelay(() -> offer(sse.newEventBuilder().comment("keep-alive")
                    .build(), false), SseStream.KEEP_ALIVE_S, SseStream.KEEP_ALIVE_S, TimeUnit.SECONDS);
        }

        void follow(Evaluator.Run r) {
            boolean left;
            synchronized (this) {
                run = r;
                left = gone;
            }
            if (left) {
                r.cancel();
            }
        }

        /** The run was refused before it started. */
        void abandon() {
            keepAlive.cancel(false);
        }

        private void left() {
            keepAlive.cancel(false);
            Evaluator.Run r;
            synchronized (this) {
                gone = true;
                r = run;
            }
            if (r != null) {
                r.cancel();
            }
        }

        @Override
        public void progress(EvaluationProgress progress) {
            offer(sse.newEventBuilder().name("progress").data(text(Progress.of(progress))).build(), false);
        }

        @Override
        public void result(EvaluationResult result) {
            offer(sse.newEventBuilder().name("result").data(text(Result.of(result))).build(), true);
        }

        @Override
        public void failed(Throwable failure) {
            offer(sse.newEventBuilder().name("failed").data(text(ApiError.of(failure))).build(), true);
        }

        private void offer(OutboundSseEvent e, boolean end) {
            synchronized (this) {
                if (gone) {
                    return;
                }
                if (end) {
                    keepAlive.cancel(false);
                    last = e;
                    pending = null; // the result supersedes progress not yet sent
                } else if (e.getComment() == null || pending == null) {
                    pending = e; // (a keep-alive does not replace waiting progress)
                }
                if (sending) {
                    return; // the send in flight takes it when it completes
                }
                sending = true;
            }
            sendNext();
        }

        /** Sends the waiting progress, else the end; one at a time. */
        private void sendNext() {
            OutboundSseEvent e;
            boolean end;
            synchronized (this) {
                if (pending != null) {
                    e = pending;
                    pending = null;
                    end = false;
                } else if (last != null) {
                    e = last;
                    end = true;
                } else {
                    sending = false;
                    return;
                }
            }
            if (sink.isClosed()) {
                left();
                return;
            }
            sink.send(e).whenComplete((v, t) -> {
                if (t != null) {
                    left();
                } else if (end) {
                    sink.close();
                } else {
                    sendNext();
                }
            });
        }

        private String text(Object value) {
            try {
                return json.writeValueAsString(value);
            } catch (JsonProcessingException e) {
                throw new IllegalStateException("an event that does not serialize: " + value.getClass(), e);
            }
        }
    }
}
