package org.sdserve.orchestrator.core;

import io.grpc.Status;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.context.Context;
import io.opentelemetry.context.Scope;
import java.util.List;
import java.util.Locale;
import java.util.function.Supplier;
import org.sdserve.common.grpc.GrpcErrors;
import org.sdserve.common.trace.Tracing;
import org.sdserve.proto.v1.GenerateRequest;

/**
 * One job's trace (OpenTelemetry): a {@code job} span from its request to its end, a child of the span current when
 * it was submitted (the Generate call's or the HTTP request's server span, itself the child of the client's
 * {@code traceparent} when it sent one), with the children {@code validate}, {@code queue} (accepted to a slot) and
 * one per stage: {@code encode}, {@code denoise}, {@code decode}. The stage calls' client spans nest in those, and
 * the stages' server spans in them (the denoiser's holds an event per step). A no-op until {@link Tracing#use}.
 */
final class JobTrace {
    static final AttributeKey<String> JOB_ID = AttributeKey.stringKey("sd.job.id");
    static final AttributeKey<String> STATE = AttributeKey.stringKey("sd.job.state");
    private static final AttributeKey<String> CALLER = AttributeKey.stringKey("sd.caller");
    private static final AttributeKey<Long> STEPS = AttributeKey.longKey("sd.steps");
    private static final AttributeKey<Long> IMAGES = AttributeKey.longKey("sd.images");
    private static final AttributeKey<Long> WIDTH = AttributeKey.longKey("sd.width");
    private static final AttributeKey<Long> HEIGHT = AttributeKey.longKey("sd.height");
    private static final AttributeKey<String> SCHEDULER = AttributeKey.stringKey("sd.scheduler");
    private static final AttributeKey<List<Long>> SEEDS = AttributeKey.longArrayKey("sd.seeds");
    private static final AttributeKey<String> GRPC_STATUS = AttributeKey.stringKey("rpc.grpc.status");

    private final Span job;
    private final Context context; // the submitter's, with the job span in it
    private volatile Span queue;

    private JobTrace(Span job, Context parent) {
        this.job = job;
        this.context = parent.with(job);
    }

    /**
     * At submit, on the submitter's thread: the job span starts. With tracing off, every span of the job is the
     * invalid one, under no parent (not even a span Quarkus records for the HTTP request).
     */
    static JobTrace begin() {
        if (!Tracing.on()) {
            return new JobTrace(Span.getInvalid(), Context.root());
        }
        return new JobTrace(Tracing.tracer().spanBuilder("job").startSpan(), Context.current());
    }

    /** The request checked and resolved against the model (a Describe call the first time), in its own span. */
    GenerateRequest validate(Supplier<GenerateRequest> check) {
        return stage("validate", check);
    }

    /** It has an id: the job's attributes, and the queue span starts (it ends when a worker takes the job). */
    void accepted(String id, GenerateRequest r, List<Long> seeds, String caller) {
        job.setAllAttributes(Attributes.builder().put(JOB_ID, id).put(CALLER, caller).put(STEPS, r.getSteps())
                .put(IMAGES, seeds.size()).put(WIDTH, r.getWidth()).put(HEIGHT, r.getHeight())
                .put(SCHEDULER, r.getScheduler()).put(SEEDS, seeds).build());
        queue = Tracing.tracer().spanBuilder("queue").setParent(context).startSpan();
    }

    /** Refused before it could run (invalid, quota, queue full, stages down): the job span ends with the error. */
    void refused(RuntimeException e) {
        endQueue();
        failed(job, e);
        job.setAttribute(STATE, "refused");
        job.end();
    }

    /** A worker took it. */
    void started() {
        endQueue();
    }

    /** Makes the job span current on this thread (a worker's), for its stage spans and calls. */
    Scope enter() {
        return context.makeCurrent();
    }

    /** One stage of the job, in a span of that name under the job's, current while it runs (for its calls). */
    <T> T stage(String name, Supplier<T> call) {
        Span span = Tracing.tracer().spanBuilder(name).setParent(context).startSpan();
        try (Scope ignored = span.makeCurrent()) {
            return call.get();
        } catch (RuntimeException e) {
            failed(span, e);
            throw e;
        } finally {
            span.end();
        }
    }

    /** An event on the current span (a stage's). */
    static void event(String name, Attributes attributes) {
        Span.current().addEvent(name, attributes);
    }

    /** The job ended: its final state, and its error when it failed. */
    void ended(Job.State state, Throwable failure) {
        endQueue();
        job.setAttribute(STATE, state.name().toLowerCase(Locale.ROOT));
        if (failure != null) {
            job.setAttribute(GRPC_STATUS, GrpcErrors.toStatus(failure).getCode().name());
            if (state == Job.State.FAILED) {
                job.setStatus(StatusCode.ERROR, GrpcErrors.toStatus(failure).getDescription());
            }
        }
        job.end();
    }

    /** Its trace id (32 hex digits), or null when it is not traced. */
    String traceId() {
        return job.getSpanContext().isValid() ? job.getSpanContext().getTraceId() : null;
    }

    private void endQueue() {
        Span q = queue;
        if (q != null) {
            q.end(); // (a second end is ignored)
        }
    }

    private static void failed(Span span, RuntimeException e) {
        Status s = GrpcErrors.toStatus(e);
        span.setAttribute(GRPC_STATUS, s.getCode().name());
        span.setStatus(StatusCode.ERROR, s.getDescription());
    }
}
