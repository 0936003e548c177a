package org.sdserve.orchestrator;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.testing.DemoModel;
import org.sdserve.orchestrator.core.EngineSettings;
import org.sdserve.orchestrator.embedded.EmbeddedStages;
import org.sdserve.orchestrator.grpc.StageClients;
import org.sdserve.proto.v1.DiffusionGrpc;
import org.sdserve.proto.v1.GenerateEvent;
import org.sdserve.proto.v1.GenerateEvent.EventCase;
import org.sdserve.proto.v1.GenerateRequest;
import org.sdserve.proto.v1.JobInfo;
import org.sdserve.proto.v1.JobState;
import org.sdserve.proto.v1.ListJobsRequest;
import org.sdserve.proto.v1.Stage;
import org.sdserve.proto.v1.WatchRequest;

/**
 * Jobs outlive their streams: Watch re-attaches after a dropped call, a job nobody follows stops after the grace,
 * a reader that stops reading is not buffered for, deadlines hold in the queue. Real gRPC (in-process transport,
 * whose flow control counts messages) over the demo model.
 */
class JobStreamsTest {
    private static EmbeddedStages stages;
    private static InProcessOrchestrator reference; // grace 0: the same requests, followed to the end

    @BeforeAll
    static void start() {
        stages = EmbeddedStages.start(DemoModel.directory(), ExecutionOptions.CPU, 64 << 20,
                StageClients.Timeouts.DEFAULT);
        reference = InProcessOrchestrator.start(stages.clients(), 1L, 2);
    }

    @AfterAll
    static void stop() {
        reference.close();
        stages.close();
    }

    private static InProcessOrchestrator withGrace(Duration grace) {
        return InProcessOrchestrator.start(stages.clients(), 1L, EngineSettings.DEFAULT.withDetachGrace(grace));
    }

    private static GenerateRequest request(long seed, int steps) {
        return GenerateRequest.newBuilder().setPrompt("a yellow circle on a black background").setSeed(seed)
                .setSteps(steps).setPreviewInterval(Math.min(5, steps)).build();
    }

    private static List<GenerateEvent> watch(InProcessOrchestrator o, String jobId, long afterSeq) {
        List<GenerateEvent> events = new ArrayList<>();
        DiffusionGrpc.newBlockingStub(o.channel).withDeadlineAfter(60, TimeUnit.SECONDS).watch(WatchRequest
                .newBuilder().setJobId(jobId).setAfterSeq(afterSeq).build()).forEachRemaining(events::add);
        return events;
    }

    private static List<EventCase> kinds(List<GenerateEvent> events) {
        return events.stream().map(GenerateEvent::getEventCase).toList();
    }

    private static JobInfo info(InProcessOrchestrator o, String jobId) {
        return DiffusionGrpc.newBlockingStub(o.channel).listJobs(ListJobsRequest.getDefaultInstance()).getJobsList()
                .stream().filter(j -> j.getJobId().equals(jobId)).findFirst().orElseThrow();
    }

    @Test
    void watchAfterADroppedStreamGoesOnFromTheLastSeqAndGivesTheSameImage() throws Exception {
        try (InProcessOrchestrator o = withGrace(Duration.ofSeconds(30))) {
            RecordedCall first = RecordedCall.droppingWhen(e -> RecordedCall.denoisingStep(e, 8));
            DiffusionGrpc.newStub(o.channel).generate(request(11, 30), first);
            assertEquals(Status.Code.CANCELLED, first.closed.get(30, TimeUnit.SECONDS).getCode());
            long seen = first.lastSeq();
            assertEquals(1, first.events.get(0).getSeq(), "Accepted is the first of the job's log");

            List<GenerateEvent> rest = watch(o, first.jobId(), seen);
            assertTrue(rest.get(0).getSeq() > seen, "nothing the client had is sent again");
            for (int i = 1; i < rest.size(); i++) {
                assertTrue(rest.get(i).getSeq() > rest.get(i - 1).getSeq(), "seqs increase");
            }
            assertEquals(List.of(EventCase.IMAGE, EventCase.COMPLETED), kinds(rest).subList(rest.size() - 2,
                    rest.size()));
            assertTrue(rest.stream().anyMatch(e -> RecordedCall.denoisingStep(e, 30)) || rest.stream().anyMatch(e ->
                    e.hasProgress() && e.getProgress().getStage() == Stage.STAGE_DECODING), "progress went on");
            byte[] alone = Events.generate(reference.channel, request(11, 30)).png(0);
            assertArrayEquals(alone, rest.get(rest.size() - 2).getImage().getPng().toByteArray(),
                    "the job went on unchanged without its stream");

            // once ended: from the start, the log holds Accepted, the last progress, the image, the end
            List<GenerateEvent> replay = watch(o, first.jobId(), 0);
            assertEquals(List.of(EventCase.ACCEPTED, EventCase.PROGRESS, EventCase.IMAGE, EventCase.COMPLETED),
                    kinds(replay), "superseded progress and the previews are not kept");
            assertEquals(Stage.STAGE_DECODING, replay.get(1).getProgress().getStage());
            assertEquals(JobState.JOB_STATE_COMPLETED, info(o, first.jobId()).getState());
            assertTrue(DiffusionGrpc.newBlockingStub(o.channel).listJobs(ListJobsRequest.getDefaultInstance())
                    .getFinished() >= 1);
        }
    }

    @Test
    void aJobNobodyFollowsStopsAfterTheGrace() throws Exception {
        try (InProcessOrchestrator o = withGrace(Duration.ofMillis(300))) {
            RecordedCall gone = RecordedCall.droppingWhen(e -> RecordedCall.denoisingStep(e, 2));
            DiffusionGrpc.newStub(o.channel).generate(GenerateRequest.newBuilder().setPrompt("a red square")
                    .setSeed(3).setSteps(200).setWidth(384).setHeight(384).build(), gone);
            gone.closed.get(30, TimeUnit.SECONDS);
            long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (info(o, gone.jobId()).getState() == JobState.JOB_STATE_RUNNING) {
                assertTrue(System.nanoTime() < until, "the orphaned job still runs after 20 s");
                Thread.sleep(50);
            }
            assertEquals(JobState.JOB_STATE_CANCELLED, info(o, gone.jobId()).getState());
            Thread.sleep(300); // the step in flight when the cancel reached the denoiser
            long steps = stages.denoiser().stepsRun();
            Thread.sleep(300);
            assertEquals(steps, stages.denoiser().stepsRun(), "the denoiser stopped with it");
            StatusRuntimeException end = assertThrows(StatusRuntimeException.class,
                    () -> watch(o, gone.jobId(), gone.lastSeq()));
            assertEquals(Status.Code.CANCELLED, end.getStatus().getCode());
            assertEquals("cancelled: no client followed it for 300 ms", end.getStatus().getDescription());
        }
    }

    @Test
    void aReaderThatStopsReadingIsNotBufferedForAndGetsTheLatestEventsAndItsImage() throws Exception {
        try (InProcessOrchestrator o = withGrace(Duration.ofSeconds(30))) {
            GenerateRequest everyStep = request(12, 40).toBuilder().setPreviewInterval(1).build();
            RecordedCall reader = RecordedCall.manual(); // Accepted, then nothing until asked
            DiffusionGrpc.newStub(o.channel).generate(everyStep, reader);
            List<GenerateEvent> got = reader.events;
            CompletableFuture<Status> closed = reader.closed;
            long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (got.isEmpty() || info(o, got.get(0).getAccepted().getJobId()).getState()
                    != JobState.JOB_STATE_COMPLETED) {
                assertTrue(System.nanoTime() < until, "the job did not complete within 60 s");
                Thread.sleep(20);
            }
            assertEquals(1, got.size(), "nothing arrives unasked");
            while (!closed.isDone()) {
                reader.started.get().request(1);
                Thread.sleep(5);
            }
            assertEquals(Status.Code.OK, closed.get().getCode());
            // unthrottled this stream is 1 + 2 + 40 + 40 + 2 + 1 + 1 = 87 events; the server wrote at most the
            // slack of 8 beyond what was asked and kept the rest compacted
            assertTrue(got.size() <= 1 + 8 + 3, got.size() + " events: " + kinds(got));
            assertEquals(List.of(EventCase.PROGRESS, EventCase.IMAGE, EventCase.COMPLETED),
                    kinds(got).subList(got.size() - 3, got.size()), "the latest progress, then the results");
            byte[] alone = Events.generate(reference.channel, everyStep).png(0);
            assertArrayEquals(alone, got.get(got.size() - 2).getImage().getPng().toByteArray());
        }
    }

    @Test
    void aDeadlinePassingInTheQueueEndsTheJobThere() throws Exception {
        // a long grace, so that only the deadline (not the client's leaving at it) can end the late job
        try (InProcessOrchestrator o = InProcessOrchestrator.start(stages.clients(), 1L, EngineSettings.DEFAULT
                .withSlots(1, 4).withDetachGrace(Duration.ofSeconds(30)))) {
            RecordedCall longJob = new RecordedCall();
            DiffusionGrpc.newStub(o.channel).generate(GenerateRequest.newBuilder().setPrompt("a red square")
                    .setSeed(3).setSteps(200).setWidth(384).setHeight(384).build(), longJob);
            long started = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (longJob.events.isEmpty()) { // admitted: it holds the one slot
                assertTrue(System.nanoTime() < started, "the long job did not start");
                Thread.sleep(10);
            }
            List<GenerateEvent> seen = new ArrayList<>();
            StatusRuntimeException late = assertThrows(StatusRuntimeException.class, () -> DiffusionGrpc
                    .newBlockingStub(o.channel).withDeadlineAfter(400, TimeUnit.MILLISECONDS)
                    .generate(request(4, 3)).forEachRemaining(seen::add));
            assertEquals(Status.Code.DEADLINE_EXCEEDED, late.getStatus().getCode());
            assertEquals(List.of(EventCase.ACCEPTED, EventCase.QUEUED), kinds(seen));
            String id = seen.get(0).getAccepted().getJobId();
            long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
            while (info(o, id).getState() == JobState.JOB_STATE_QUEUED) {
                assertTrue(System.nanoTime() < until, "the late job still waits");
                Thread.sleep(20);
            }
            assertEquals(JobState.JOB_STATE_FAILED, info(o, id).getState());
            assertEquals(0, DiffusionGrpc.newBlockingStub(o.channel).listJobs(ListJobsRequest.getDefaultInstance())
                    .getWaiting());
            StatusRuntimeException end = assertThrows(StatusRuntimeException.class, () -> watch(o, id, 2));
            assertEquals(Status.Code.DEADLINE_EXCEEDED, end.getStatus().getCode());
            assertEquals("the deadline passed while the job waited in the queue", end.getStatus().getDescription());
            assertEquals(JobState.JOB_STATE_RUNNING, info(o, longJob.jobId()).getState(), "the running job goes on");
        }
    }

    @Test
    void watchOfAnUnknownOrMalformedIdIsRefused() {
        StatusRuntimeException unknown = assertThrows(StatusRuntimeException.class,
                () -> watch(reference, UUID.randomUUID().toString(), 0));
        assertEquals(Status.Code.NOT_FOUND, unknown.getStatus().getCode());
        assertTrue(unknown.getStatus().getDescription().startsWith("no job has id "),
                unknown.getStatus().getDescription());
        StatusRuntimeException bad = assertThrows(StatusRuntimeException.class,
                () -> watch(reference, "y".repeat(500), 0));
        assertEquals(Status.Code.INVALID_ARGUMENT, bad.getStatus().getCode());
        assertEquals("job_id must be the id of an Accepted event (at most 64 characters), got 500 characters",
                bad.getStatus().getDescription());
    }

    @Test
    void aFinishedJobIsForgottenAfterItsRetention() {
        try (InProcessOrchestrator o = InProcessOrchestrator.start(stages.clients(), 1L, new EngineSettings(1, 4,
                Duration.ZERO, Duration.ZERO, 256, 1 << 20, 5, 4))) {
            Events done = Events.generate(o.channel, request(5, 3));
            StatusRuntimeException gone = assertThrows(StatusRuntimeException.class,
                    () -> watch(o, done.all().get(0).getAccepted().getJobId(), 0));
            assertEquals(Status.Code.NOT_FOUND, gone.getStatus().getCode());
        }
    }

    @Test
    void drainRefusesNewAndWaitingJobsAndLetsTheRunningOneFinish() throws Exception {
        InProcessOrchestrator o = InProcessOrchestrator.start(stages.clients(), 1L, EngineSettings.DEFAULT
                .withSlots(1, 4).withDetachGrace(Duration.ofSeconds(30)));
        try {
            RecordedCall running = new RecordedCall();
            DiffusionGrpc.newStub(o.channel).generate(request(21, 40), running);
            running.progressed.get(30, TimeUnit.SECONDS);
            RecordedCall waiting = new RecordedCall();
            DiffusionGrpc.newStub(o.channel).generate(request(22, 5), waiting);
            long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (waiting.of(EventCase.QUEUED).isEmpty()) {
                assertTrue(System.nanoTime() < until, "the second job never queued");
                Thread.sleep(10);
            }
            CompletableFuture<Integer> drained = CompletableFuture.supplyAsync(() -> o.engine.drain(
                    Duration.ofSeconds(60)));
            Status refused = waiting.closed.get(10, TimeUnit.SECONDS);
            assertEquals(Status.Code.UNAVAILABLE, refused.getCode());
            assertEquals("the orchestrator is shutting down and the job had not started; retry",
                    refused.getDescription());
            StatusRuntimeException late = assertThrows(StatusRuntimeException.class,
                    () -> Events.generate(o.channel, request(23, 5)));
            assertEquals(Status.Code.UNAVAILABLE, late.getStatus().getCode());
            assertEquals(Status.Code.OK, running.closed.get(60, TimeUnit.SECONDS).getCode(), "the running job finished");
            assertEquals(1, running.of(EventCase.IMAGE).size());
            assertEquals(1, drained.get(60, TimeUnit.SECONDS), "drain returns once the running job is done");
        } finally {
            o.close();
        }
    }

    @Test
    void aDrainWhoseGraceRunsOutStopsTheRunningJobWithUnavailable() throws Exception {
        InProcessOrchestrator o = InProcessOrchestrator.start(stages.clients(), 1L, EngineSettings.DEFAULT
                .withDetachGrace(Duration.ofSeconds(30)));
        try {
            RecordedCall running = new RecordedCall();
            DiffusionGrpc.newStub(o.channel).generate(GenerateRequest.newBuilder().setPrompt("a red square")
                    .setSeed(3).setSteps(200).setWidth(384).setHeight(384).build(), running);
            running.progressed.get(30, TimeUnit.SECONDS);
            assertEquals(0, o.engine.drain(Duration.ofMillis(200)));
            Status end = running.closed.get(30, TimeUnit.SECONDS);
            assertEquals(Status.Code.UNAVAILABLE, end.getCode());
            assertEquals("the orchestrator is shutting down; retry", end.getDescription());
        } finally {
            o.close();
        }
    }
}
