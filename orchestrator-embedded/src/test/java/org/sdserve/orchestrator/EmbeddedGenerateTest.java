package org.sdserve.orchestrator;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.sdserve.common.image.RgbImage;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.testing.DemoModel;
import org.sdserve.eval.judge.PromptJudge;
import org.sdserve.orchestrator.embedded.EmbeddedStages;
import org.sdserve.orchestrator.grpc.StageClients;
import org.sdserve.proto.v1.DiffusionGrpc;
import org.sdserve.proto.v1.GenerateEvent;
import org.sdserve.proto.v1.GenerateEvent.EventCase;
import org.sdserve.proto.v1.GenerateRequest;
import org.sdserve.proto.v1.Progress;
import org.sdserve.proto.v1.Stage;

/**
 * End to end in embedded mode: the orchestrator and the three stages in this JVM, every hop a real gRPC call over
 * the in-process transport, on the committed demo model.
 */
class EmbeddedGenerateTest {
    private static EmbeddedStages stages;
    private static InProcessOrchestrator orchestrator;
    private static ManagedChannel channel;

    @BeforeAll
    static void start() {
        stages = EmbeddedStages.start(DemoModel.directory(), ExecutionOptions.CPU, 64 << 20,
                StageClients.Timeouts.DEFAULT);
        orchestrator = InProcessOrchestrator.start(stages.clients(), 12345L, 4);
        channel = orchestrator.channel;
    }

    @AfterAll
    static void stop() {
        orchestrator.close();
        stages.close();
    }

    static GenerateRequest.Builder request(String prompt, long seed) {
        return GenerateRequest.newBuilder().setPrompt(prompt).setSeed(seed).setSteps(20);
    }

    @Test
    void sameSeedGivesByteIdenticalPngAndOtherSeedsDiffer() {
        byte[] a = Events.generate(channel, request("a red circle on a blue background", 7).build()).png(0);
        byte[] b = Events.generate(channel, request("a red circle on a blue background", 7).build()).png(0);
        byte[] c = Events.generate(channel, request("a red circle on a blue background", 8).build()).png(0);
        assertArrayEquals(a, b);
        assertFalse(java.util.Arrays.equals(a, c));
    }

    @Test
    void eventsArriveInOrderWithOneProgressPerStep() {
        Events ev = Events.generate(channel, request("a small green square on a white background", 3).setSteps(12)
                .build());
        assertEquals(EventCase.ACCEPTED, ev.first());
        assertEquals(EventCase.COMPLETED, ev.last());
        GenerateRequest resolved = ev.all().get(0).getAccepted().getResolved();
        assertEquals(64, resolved.getWidth());
        assertEquals("ddim", resolved.getScheduler());
        assertEquals(7.5f, resolved.getGuidanceScale());
        List<Integer> denoiseSteps = new ArrayList<>();
        List<Stage> stageOrder = new ArrayList<>();
        for (GenerateEvent e : ev.of(EventCase.PROGRESS)) {
            Progress p = e.getProgress();
            if (stageOrder.isEmpty() || stageOrder.get(stageOrder.size() - 1) != p.getStage()) {
                stageOrder.add(p.getStage());
            }
            if (p.getStage() == Stage.STAGE_DENOISING) {
                denoiseSteps.add(p.getStep());
                assertEquals(12, p.getTotalSteps());
            }
        }
        assertEquals(List.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12), denoiseSteps);
        assertEquals(List.of(Stage.STAGE_TEXT_ENCODING, Stage.STAGE_DENOISING, Stage.STAGE_DECODING), stageOrder);
        assertEquals(1, ev.of(EventCase.IMAGE).size());
        assertEquals(3, ev.of(EventCase.IMAGE).get(0).getImage().getSeed());
        assertTrue(ev.of(EventCase.COMPLETED).get(0).getCompleted().getStageMsMap().containsKey("denoising"));
    }

    @Test
    void imageFollowsItsPrompt() {
        // docs/prompt-adherence-judge.md on pixels the services produced
        String[][] cases = {{"red", "circle", "blue"}, {"yellow", "square", "black"}, {"green", "triangle", "white"},
            {"purple", "cross", "orange"}, {"white", "circle", "green"}, {"blue", "square", "yellow"}};
        int shapes = 0;
        for (String[] c : cases) {
            String prompt = "a large " + c[0] + " " + c[1] + " on a " + c[2] + " background";
            PromptJudge.Verdict v = PromptJudge.judge(Events.generate(channel, request(prompt, 1).setSteps(25)
                    .build()).image(0));
            assertEquals(c[0], v.colour(), prompt);
            assertEquals(c[2], v.background(), prompt);
            shapes += v.shape().equals(c[1]) ? 1 : 0;
        }
        assertTrue(shapes >= 4, "shapes right in " + shapes + " of 6");
    }

    /** A solid-colour 'scene' PNG: side x side pixels of one colour with a square of another in the middle. */
    static ByteString scene(int side, int fg, int bg) {
        byte[] rgb = new byte[side * side * 3];
        for (int y = 0; y < side; y++) {
            for (int x = 0; x < side; x++) {
                boolean in = Math.abs(x - side / 2) < side / 4 && Math.abs(y - side / 2) < side / 4;
                int c = in ? fg : bg;
                int i = (y * side + x) * 3;
                rgb[i] = (byte) (c >> 16);
                rgb[i + 1] = (byte) (c >> 8);
                rgb[i + 2] = (byte) c;
            }
        }
        return ByteString.copyFrom(new RgbImage(side, side, rgb).toPng());
    }

    @Test
    void imageToImageRecoloursTheInitImageAndReportsItsStages() {
        // a blue square on red: with a prompt of a green square on red at strength 0.6, the square turns green
        ByteString init = scene(64, 0x1e46dc, 0xdc1e1e);
        Events ev = Events.generate(channel, request("a large green square on a red background", 5).setSteps(20)
                .setInitImage(init).setStrength(0.6f).setScheduler("euler_a").build());
        GenerateRequest resolved = ev.all().get(0).getAccepted().getResolved();
        assertTrue(resolved.getInitImage().isEmpty(), "the init image is not echoed back");
        assertEquals(0.6f, resolved.getStrength());
        assertEquals(64, resolved.getWidth());
        List<Stage> stageOrder = new ArrayList<>();
        List<Integer> steps = new ArrayList<>();
        for (GenerateEvent e : ev.of(EventCase.PROGRESS)) {
            Stage st = e.getProgress().getStage();
            if (stageOrder.isEmpty() || stageOrder.get(stageOrder.size() - 1) != st) {
                stageOrder.add(st);
            }
            if (st == Stage.STAGE_DENOISING) {
                steps.add(e.getProgress().getStep());
            }
        }
        assertEquals(List.of(Stage.STAGE_TEXT_ENCODING, Stage.STAGE_IMAGE_ENCODING, Stage.STAGE_DENOISING,
                Stage.STAGE_DECODING), stageOrder);
        // the last int(20 x 0.6) = 12 steps run, numbered in the whole schedule: 9..20
        assertEquals(java.util.stream.IntStream.rangeClosed(9, 20).boxed().toList(), steps);
        assertTrue(ev.of(EventCase.COMPLETED).get(0).getCompleted().getStageMsMap().containsKey("image_encoding"));
        PromptJudge.Verdict v = PromptJudge.judge(ev.image(0));
        assertEquals("green", v.colour());
        assertEquals("red", v.background());
        assertEquals("square", v.shape(), "the layout is the init image's");

        // the size comes from the image when unset; an image of another size is resized to width x height
        assertEquals(32, Events.generate(channel, request("a large green square on a red background", 5)
                .setSteps(4).setInitImage(scene(32, 0x1e46dc, 0xdc1e1e)).build()).image(0).width());
        RgbImage resized = Events.generate(channel, request("a large green square on a red background", 5)
                .setSteps(4).setInitImage(scene(48, 0x1e46dc, 0xdc1e1e)).setWidth(64).setHeight(64).build())
                .image(0);
        assertEquals(64, resized.width());
        // the same seed and image give the same PNG; another seed another one
        byte[] a = Events.generate(channel, request("a large green square on a red background", 5).setSteps(6)
                .setInitImage(init).build()).png(0);
        byte[] b = Events.generate(channel, request("a large green square on a red background", 5).setSteps(6)
                .setInitImage(init).build()).png(0);
        byte[] c = Events.generate(channel, request("a large green square on a red background", 6).setSteps(6)
                .setInitImage(init).build()).png(0);
        assertArrayEquals(a, b);
        assertFalse(java.util.Arrays.equals(a, c));
    }

    @Test
    void inpaintingRepaintsTheMaskedRegionAndKeepsTheRest() {
        // a blue square on red; the mask (white) covers the square: it becomes yellow, the red background stays
        ByteString init = scene(64, 0x1e46dc, 0xdc1e1e);
        ByteString mask = scene(64, 0xffffff, 0x000000);
        Events ev = Events.generate(channel, request("a large yellow square on a red background", 8).setSteps(20)
                .setInitImage(init).setMaskImage(mask).build());
        GenerateRequest resolved = ev.all().get(0).getAccepted().getResolved();
        assertEquals(1f, resolved.getStrength(), "inpainting's default strength");
        assertTrue(resolved.getMaskImage().isEmpty(), "the mask is not echoed back");
        RgbImage out = ev.image(0);
        PromptJudge.Verdict v = PromptJudge.judge(out);
        assertEquals("yellow", v.colour());
        assertEquals("red", v.background());
        // a corner, outside the mask: still the init image's red (through the VAE's reconstruction)
        assertTrue(out.red(3, 3) > 150 && out.green(3, 3) < 90 && out.blue(3, 3) < 90,
                "corner " + out.red(3, 3) + "," + out.green(3, 3) + "," + out.blue(3, 3));
        // a mask of another size is resized with the image
        assertEquals(64, Events.generate(channel, request("a large yellow square on a red background", 8)
                .setSteps(4).setInitImage(init).setMaskImage(scene(32, 0xffffff, 0)).build()).image(0).width());
    }

    @Test
    void imagesOfABatchEqualTheSameSeedsAlone() {
        Events two = Events.generate(channel, request("a blue cross on a white background", 40).setNumImages(2)
                .build());
        assertEquals(2, two.of(EventCase.IMAGE).size());
        assertEquals(41, two.of(EventCase.IMAGE).get(1).getImage().getSeed());
        byte[] alone = Events.generate(channel, request("a blue cross on a white background", 41).build()).png(0);
        assertArrayEquals(alone, two.png(1));
    }

    @Test
    void previewsAtTheIntervalAndTheLastStep() {
        Events ev = Events.generate(channel, request("a red square on a black background", 2).setSteps(10)
                .setPreviewInterval(4).build());
        List<Integer> steps = ev.of(EventCase.PREVIEW).stream().map(e -> e.getPreview().getStep()).toList();
        assertEquals(List.of(4, 8, 10), steps);
        assertEquals(8, ev.of(EventCase.PREVIEW).get(0).getPreview().getPng().isEmpty() ? 0
                : org.sdserve.common.image.RgbImage.fromPng(ev.of(EventCase.PREVIEW).get(0).getPreview().getPng()
                .toByteArray(), "preview").width());
    }

    @Test
    void cancellingTheCallStopsTheDenoiserWithinOneStep() throws Exception {
        long before = stages.denoiser().stepsRun();
        RecordedCall call = RecordedCall.droppingWhen(e -> RecordedCall.denoisingStep(e, 3));
        DiffusionGrpc.newStub(channel).generate(request("a red circle on a blue background", 5).setSteps(200)
                .setWidth(384).setHeight(384).build(), call); // ~0.15 s a step here: the cancel outruns it
        CompletableFuture<Status> closed = call.closed;
        assertEquals(Status.Code.CANCELLED, closed.get(60, TimeUnit.SECONDS).getCode());
        Thread.sleep(500); // let a runaway loop show itself
        long ran = stages.denoiser().stepsRun() - before;
        assertTrue(ran <= 4, "the denoiser ran " + ran + " steps after a cancel at step 3");
        Thread.sleep(300);
        assertEquals(ran, stages.denoiser().stepsRun() - before, "no step after the cancel");
    }

    private static void awaitQueued(RecordedCall s, int events) throws InterruptedException {
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (s.of(EventCase.QUEUED).size() < events) {
            assertTrue(System.nanoTime() < until, "no " + events + " Queued event(s) within 30 s: " + s.events);
            Thread.sleep(10);
        }
    }

    /** An orchestrator over the shared stages that runs one job and lets two wait. */
    private static InProcessOrchestrator oneSlotTwoWaiting() {
        return InProcessOrchestrator.start(stages.clients(), 1L, 1, 2);
    }

    /** Starts a long job (200 steps at 384x384) in {@code context} and waits until it denoises. */
    private static void occupyTheSlot(ManagedChannel ch, io.grpc.Context.CancellableContext context, RecordedCall events)
            throws Exception {
        context.run(() -> DiffusionGrpc.newStub(ch).generate(request("a red circle", 1).setSteps(200)
                .setWidth(384).setHeight(384).build(), events));
        events.progressed.get(30, TimeUnit.SECONDS);
    }

    @Test
    void jobsBeyondTheSlotsWaitInTheQueueWithTheirPlaceAndAFullQueueAnswersResourceExhausted() throws Exception {
        try (InProcessOrchestrator oneSlot = oneSlotTwoWaiting()) {
            ManagedChannel ch = oneSlot.channel;
            io.grpc.Context.CancellableContext longJob = io.grpc.Context.current().withCancellation();
            RecordedCall first = new RecordedCall();
            occupyTheSlot(ch, longJob, first);
            RecordedCall second = new RecordedCall();
            RecordedCall third = new RecordedCall();
            DiffusionGrpc.newStub(ch).generate(request("a blue square", 2).setSteps(3).build(), second);
            awaitQueued(second, 1);
            DiffusionGrpc.newStub(ch).generate(request("a green circle", 3).setSteps(3).build(), third);
            awaitQueued(third, 1);
            assertEquals(1, second.of(EventCase.QUEUED).get(0).getQueued().getPosition());
            assertEquals(2, third.of(EventCase.QUEUED).get(0).getQueued().getPosition());
            assertEquals(2, third.of(EventCase.QUEUED).get(0).getQueued().getQueueDepth());

            org.sdserve.proto.v1.ListJobsResponse list = DiffusionGrpc.newBlockingStub(ch).listJobs(
                    org.sdserve.proto.v1.ListJobsRequest.getDefaultInstance());
            assertEquals(1, list.getRunning());
            assertEquals(2, list.getWaiting());
            assertEquals(List.of(jobId(first), jobId(second), jobId(third)), list.getJobsList().stream()
                    .map(org.sdserve.proto.v1.JobInfo::getJobId).toList(), "running first, then in queue order");
            assertEquals(org.sdserve.proto.v1.JobState.JOB_STATE_RUNNING, list.getJobs(0).getState());
            assertEquals(Stage.STAGE_DENOISING, list.getJobs(0).getStage());
            assertTrue(list.getJobs(0).getStep() >= 1 && list.getJobs(0).getTotalSteps() == 200);
            assertEquals(List.of(1, 2), list.getJobsList().subList(1, 3).stream()
                    .map(org.sdserve.proto.v1.JobInfo::getPosition).toList());
            assertEquals(1, DiffusionGrpc.newBlockingStub(ch).listJobs(org.sdserve.proto.v1.ListJobsRequest
                    .newBuilder().setLimit(1).build()).getJobsCount());

            StatusRuntimeException full = assertThrows(StatusRuntimeException.class,
                    () -> Events.generate(ch, request("a blue square", 4).build()));
            assertEquals(Status.Code.RESOURCE_EXHAUSTED, full.getStatus().getCode());
            assertTrue(full.getStatus().getDescription().startsWith("queue full: 2 jobs waiting and 1 running"),
                    full.getStatus().getDescription());

            longJob.cancel(null); // the running job stops; the waiting ones start in their order
            assertEquals(Status.Code.CANCELLED, first.closed.get(30, TimeUnit.SECONDS).getCode());
            assertEquals(Status.Code.OK, second.closed.get(60, TimeUnit.SECONDS).getCode());
            assertEquals(Status.Code.OK, third.closed.get(60, TimeUnit.SECONDS).getCode());
            assertEquals(1, second.of(EventCase.IMAGE).size());
            assertEquals(List.of(2, 1), third.of(EventCase.QUEUED).stream().map(e -> e.getQueued().getPosition())
                    .toList(), "the third job moved up when the second started");
            assertEquals(EventCase.ACCEPTED, third.events.get(0).getEventCase());
            ch.shutdownNow();
        }
    }

    @Test
    void aWaitingJobWhoseClientLeavesGivesUpItsPlace() throws Exception {
        try (InProcessOrchestrator oneSlot = oneSlotTwoWaiting()) {
            ManagedChannel ch = oneSlot.channel;
            io.grpc.Context.CancellableContext longJob = io.grpc.Context.current().withCancellation();
            io.grpc.Context.CancellableContext leaving = io.grpc.Context.current().withCancellation();
            RecordedCall first = new RecordedCall();
            RecordedCall gone = new RecordedCall();
            RecordedCall last = new RecordedCall();
            occupyTheSlot(ch, longJob, first);
            leaving.run(() -> DiffusionGrpc.newStub(ch).generate(request("a blue square", 2).setSteps(3).build(),
                    gone));
            awaitQueued(gone, 1);
            DiffusionGrpc.newStub(ch).generate(request("a green circle", 3).setSteps(3).build(), last);
            awaitQueued(last, 1);
            leaving.cancel(null);
            awaitQueued(last, 2);
            assertEquals(List.of(2, 1), last.of(EventCase.QUEUED).stream().map(e -> e.getQueued().getPosition())
                    .toList(), "the job behind moved up when the one ahead left");
            longJob.cancel(null);
            assertEquals(Status.Code.OK, last.closed.get(60, TimeUnit.SECONDS).getCode());
            ch.shutdownNow();
        }
    }

    private static String jobId(RecordedCall s) {
        return s.events.get(0).getAccepted().getJobId();
    }

    @Test
    void cancelByIdStopsThatJobWithinOneStepAndOnlyThatJob() throws Exception {
        RecordedCall doomed = new RecordedCall();
        RecordedCall other = new RecordedCall();
        DiffusionGrpc.newStub(channel).generate(request("a red circle on a blue background", 5).setSteps(200)
                .setWidth(384).setHeight(384).build(), doomed);
        doomed.progressed.get(30, TimeUnit.SECONDS);
        DiffusionGrpc.newStub(channel).generate(request("a blue square", 6).setSteps(30).build(), other);
        var stub = DiffusionGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS);
        assertEquals(org.sdserve.proto.v1.JobState.JOB_STATE_RUNNING, stub.cancel(
                org.sdserve.proto.v1.CancelRequest.newBuilder().setJobId(jobId(doomed)).build()).getState());
        Status end = doomed.closed.get(30, TimeUnit.SECONDS);
        assertEquals(Status.Code.CANCELLED, end.getCode());
        assertEquals("cancelled by Cancel while running", end.getDescription());
        long after = stages.denoiser().stepsRun();
        assertEquals(Status.Code.OK, other.closed.get(60, TimeUnit.SECONDS).getCode(), "the other job goes on");
        assertEquals(1, other.of(EventCase.IMAGE).size());
        long doomedSteps = doomed.of(EventCase.PROGRESS).stream()
                .filter(e -> e.getProgress().getStage() == Stage.STAGE_DENOISING).count();
        assertTrue(doomedSteps < 200, "the cancelled job ran " + doomedSteps + " steps");
        assertTrue(stages.denoiser().stepsRun() - after <= 30 + 1, "at most one step of the cancelled job after "
                + "the cancel, besides the other job's 30");
        assertEquals(org.sdserve.proto.v1.JobState.JOB_STATE_CANCELLED, stub.cancel(org.sdserve.proto.v1.CancelRequest
                .newBuilder().setJobId(jobId(doomed)).build()).getState(), "a second Cancel finds it cancelled");
        StatusRuntimeException unknown = assertThrows(StatusRuntimeException.class, () -> stub.cancel(
                org.sdserve.proto.v1.CancelRequest.newBuilder().setJobId(UUID.randomUUID().toString()).build()));
        assertEquals(Status.Code.NOT_FOUND, unknown.getStatus().getCode());
        StatusRuntimeException bad = assertThrows(StatusRuntimeException.class, () -> stub.cancel(
                org.sdserve.proto.v1.CancelRequest.newBuilder().setJobId("x".repeat(1000)).build()));
        assertEquals(Status.Code.INVALID_ARGUMENT, bad.getStatus().getCode());
        assertEquals("job_id must be the id of an Accepted event (at most 64 characters), got 1000 characters",
                bad.getStatus().getDescription());
    }

    @Test
    void cancelByIdOfAWaitingJobTakesItOutOfTheQueue() throws Exception {
        try (InProcessOrchestrator oneSlot = oneSlotTwoWaiting()) {
            ManagedChannel ch = oneSlot.channel;
            io.grpc.Context.CancellableContext longJob = io.grpc.Context.current().withCancellation();
            RecordedCall first = new RecordedCall();
            RecordedCall second = new RecordedCall();
            RecordedCall third = new RecordedCall();
            occupyTheSlot(ch, longJob, first);
            DiffusionGrpc.newStub(ch).generate(request("a blue square", 2).setSteps(3).build(), second);
            awaitQueued(second, 1);
            DiffusionGrpc.newStub(ch).generate(request("a green circle", 3).setSteps(3).build(), third);
            awaitQueued(third, 1);
            assertEquals(org.sdserve.proto.v1.JobState.JOB_STATE_QUEUED, DiffusionGrpc.newBlockingStub(ch)
                    .cancel(org.sdserve.proto.v1.CancelRequest.newBuilder().setJobId(jobId(second)).build())
                    .getState());
            assertEquals(Status.Code.CANCELLED, second.closed.get(10, TimeUnit.SECONDS).getCode());
            awaitQueued(third, 2);
            assertEquals(List.of(2, 1), third.of(EventCase.QUEUED).stream().map(e -> e.getQueued().getPosition())
                    .toList());
            longJob.cancel(null);
            assertEquals(Status.Code.OK, third.closed.get(60, TimeUnit.SECONDS).getCode());
            ch.shutdownNow();
        }
    }

    @Test
    void interactiveJobsWaitAheadOfBatchJobs() throws Exception {
        try (InProcessOrchestrator oneSlot = oneSlotTwoWaiting()) {
            ManagedChannel ch = oneSlot.channel;
            io.grpc.Context.CancellableContext longJob = io.grpc.Context.current().withCancellation();
            RecordedCall first = new RecordedCall();
            RecordedCall bulk = new RecordedCall();
            RecordedCall person = new RecordedCall();
            occupyTheSlot(ch, longJob, first);
            DiffusionGrpc.newStub(ch).generate(request("a blue square", 2).setSteps(3)
                    .setPriority(org.sdserve.proto.v1.Priority.PRIORITY_BATCH).build(), bulk);
            awaitQueued(bulk, 1);
            DiffusionGrpc.newStub(ch).generate(request("a green circle", 3).setSteps(3).build(), person);
            awaitQueued(person, 1);
            assertEquals(1, person.of(EventCase.QUEUED).get(0).getQueued().getPosition(), "ahead of the batch job");
            longJob.cancel(null);
            assertEquals(Status.Code.OK, person.closed.get(60, TimeUnit.SECONDS).getCode());
            assertEquals(Status.Code.OK, bulk.closed.get(60, TimeUnit.SECONDS).getCode());
            assertEquals(List.of(1, 2, 1), bulk.of(EventCase.QUEUED).stream().map(e -> e.getQueued().getPosition())
                    .toList(), "the batch job went behind the interactive one, then up when it started");
            assertEquals(org.sdserve.proto.v1.Priority.PRIORITY_BATCH,
                    bulk.events.get(0).getAccepted().getResolved().getPriority());
            StatusRuntimeException bad = assertThrows(StatusRuntimeException.class, () -> Events.generate(ch,
                    request("a red circle", 1).setPriorityValue(7).build()));
            assertEquals("priority must be PRIORITY_INTERACTIVE or PRIORITY_BATCH, got 7",
                    bad.getStatus().getDescription());
            ch.shutdownNow();
        }
    }

    @Test
    void aStageThatCannotBeReachedGivesUnavailable() {
        String nowhere = "nowhere-" + UUID.randomUUID();
        StageClients down = new StageClients(org.sdserve.common.grpc.StageChannels.inProcess("text-encoder", nowhere,
                1 << 20), org.sdserve.common.grpc.StageChannels.inProcess("denoiser", nowhere, 1 << 20),
                org.sdserve.common.grpc.StageChannels.inProcess("vae", nowhere, 1 << 20), StageClients.Timeouts.DEFAULT);
        try (down; InProcessOrchestrator o = InProcessOrchestrator.start(down, 1L, 1)) {
            ManagedChannel ch = o.channel;
            StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
                    () -> Events.generate(ch, request("a red circle", 1).build()));
            assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode(), e.getStatus().toString());
            ch.shutdownNow();
        }
    }

    @Test
    void badRequestsGetInvalidArgumentWithAMessageThatSaysWhatWasExpected() {
        assertRefused(r -> r.setSteps(500), "steps must be in [1, 200], got 500");
        assertRefused(r -> r.setWidth(72), "width must be a multiple of 16 in [16, 2048], got 72");
        assertRefused(r -> r.setHeight(4096), "height must be a multiple of 16 in [16, 2048], got 4096");
        assertRefused(r -> r.setScheduler("plms"), "scheduler: unknown \"plms\"; valid: ddim, euler, euler_karras, "
                + "euler_a, dpmpp_2m, dpmpp_2m_karras");
        assertRefused(r -> r.setGuidanceScale(Float.NaN), "guidance_scale must be a finite number in [0, 100.0], "
                + "got NaN");
        assertRefused(r -> r.setPrompt("   "), "prompt is required and must not be blank");
        assertRefused(r -> r.setNumImages(9), "num_images must be in [1, 8], got 9");
        assertRefused(r -> r.setModel("sd-xl"), "model: this server serves \"sd-shapes-64\", got \"sd-xl\"");
        assertRefused(r -> r.setInitImage(ByteString.copyFromUtf8("png")), "init_image: not a PNG or other readable "
                + "image (3 bytes)");
        assertRefused(r -> r.setStrength(0.5f), "strength goes with init_image (image-to-image), which is unset");
        assertRefused(r -> r.setInitImage(scene(64, 0, 0xffffff)).setStrength(0f), "strength must be in (0, 1], "
                + "got 0.0");
        assertRefused(r -> r.setInitImage(scene(64, 0, 0xffffff)).setStrength(0.01f), "strength 0.01 with 20 steps "
                + "runs no step");
        assertRefused(r -> r.setInitImage(scene(50, 0, 0xffffff)), "init_image is 50x50, and width and height come "
                + "from it when unset: its sides must be multiples of 16");
        assertRefused(r -> r.setMaskImage(scene(64, 0, 0xffffff)), "mask_image goes with init_image (inpainting "
                + "repaints part of it), which is unset");
        assertRefused(r -> r.setInitImage(scene(64, 0, 0xffffff)).setMaskImage(ByteString.copyFromUtf8("x")),
                "mask_image: not a PNG or other readable image (1 bytes)");
        assertRefused(r -> r.setEta(2f), "eta must be in [0, 1], got 2.0");
        assertRefused(r -> r.setPrompt("red ".repeat(80)), "prompt is 80 tokens long; at most 75 fit");
        assertRefused(r -> r.setNegativePrompt("blue ".repeat(90)), "negative_prompt is 90 tokens long");
    }

    private static void assertRefused(UnaryOperator<GenerateRequest.Builder> change, String message) {
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
                () -> Events.generate(channel, change.apply(request("a red circle on a blue background", 1)).build()));
        assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode(), e.getStatus().toString());
        assertTrue(e.getStatus().getDescription().contains(message), e.getStatus().getDescription());
    }
}
