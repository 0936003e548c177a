package org.sdserve.orchestrator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.grpc.Context;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.inprocess.InProcessChannelBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.sdserve.common.image.RgbImage;
import org.sdserve.common.noise.TorchGenerator;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.testing.DemoModel;
import org.sdserve.denoise.batch.BatchSettings;
import org.sdserve.eval.extract.FeatureExtractor;
import org.sdserve.eval.judge.DemoScenes;
import org.sdserve.eval.metrics.Features;
import org.sdserve.eval.metrics.Fid;
import org.sdserve.eval.metrics.InceptionScore;
import org.sdserve.eval.metrics.Kid;
import org.sdserve.eval.metrics.PrecisionRecall;
import org.sdserve.orchestrator.core.Caller;
import org.sdserve.orchestrator.core.Evaluator;
import org.sdserve.orchestrator.embedded.EmbeddedStages;
import org.sdserve.orchestrator.grpc.StageClients;
import org.sdserve.proto.v1.DiffusionGrpc;
import org.sdserve.proto.v1.EvaluateEvent;
import org.sdserve.proto.v1.EvaluateRequest;
import org.sdserve.proto.v1.EvaluationResult;
import org.sdserve.proto.v1.ExtractRequest;
import org.sdserve.proto.v1.FeaturesGrpc;
import org.sdserve.proto.v1.GenerateEvent;
import org.sdserve.proto.v1.GenerateRequest;

/**
 * Diffusion.Evaluate on the embedded stack over real gRPC (in-process channels), the VAE stage serving the demo's
 * feature extractor (models/scene-features): its figures are the evaluation module's measures of the very images
 * Generate makes for the same requests, and bad requests are refused before any job runs.
 */
class EvaluateTest {
    private static final Path EXTRACTOR = Path.of(System.getProperty("sd.root", "..")).resolve("models/scene-features");
    private static EmbeddedStages stages;
    private static InProcessOrchestrator orchestrator;

    @BeforeAll
    static void start() {
        stages = EmbeddedStages.start(DemoModel.directory(), ExecutionOptions.CPU, TorchGenerator.Kernel.AVX2,
                BatchSettings.DEFAULT, EXTRACTOR, 64 << 20, StageClients.Timeouts.DEFAULT);
        orchestrator = InProcessOrchestrator.start(stages.clients(), 0, 4);
    }

    @AfterAll
    static void stop() {
        orchestrator.close();
        stages.close();
    }

    private static DiffusionGrpc.DiffusionBlockingStub stub() {
        return DiffusionGrpc.newBlockingStub(orchestrator.channel).withDeadlineAfter(5, TimeUnit.MINUTES);
    }

    /** The result, the images_done of each progress event before it, and whether the last said measuring. */
    private record Ran(EvaluationResult result, List<Integer> progress, boolean measuring) {
    }

    private static Ran evaluate(EvaluateRequest request) {
        List<Integer> progress = new ArrayList<>();
        EvaluationResult result = null;
        boolean measuring = false;
        Iterator<EvaluateEvent> events = stub().evaluate(request);
        while (events.hasNext()) {
            EvaluateEvent e = events.next();
            if (e.hasProgress()) {
                assertEquals(null, result, "no progress after the result");
                assertEquals(request.getImages(), e.getProgress().getImagesTotal());
                assertFalse(measuring, "measuring is the last progress");
                measuring = e.getProgress().getMeasuring();
                if (!measuring) {
                    progress.add(e.getProgress().getImagesDone());
                }
            } else {
                result = e.getResult();
            }
        }
        return new Ran(result, progress, measuring);
    }

    @Test
    void theFiguresAreTheMeasuresOfTheImagesGenerateMakesForTheSameRequests() {
        EvaluateRequest request = EvaluateRequest.newBuilder().setImages(20).setSteps(6).setSeed(100).build();
        Ran ran = evaluate(request);
        EvaluationResult r = ran.result();
        assertEquals(20, r.getResolved().getImages());
        assertEquals(8, r.getResolved().getImagesPerJob());
        assertEquals("ddim", r.getResolved().getScheduler());
        assertEquals(7.5f, r.getResolved().getGuidanceScale());
        assertFalse(ran.progress().isEmpty());
        assertTrue(ran.measuring(), "the last progress says the measures are being computed");
        assertEquals(20, ran.progress().get(ran.progress().size() - 1));
        for (int i = 1; i < ran.progress().size(); i++) {
            assertTrue(ran.progress().get(i) > ran.progress().get(i - 1), ran.progress().toString());
        }

        // the same three jobs (8, 8 and 4 images; prompts 0, 1, 2 of the demo set; seeds 100, 108, 116), one by one
        List<RgbImage> images = new ArrayList<>();
        int[] sizes = {8, 8, 4};
        for (int j = 0; j < 3; j++) {
            Iterator<GenerateEvent> events = DiffusionGrpc.newBlockingStub(orchestrator.channel).generate(
                    GenerateRequest.newBuilder().setPrompt(DemoScenes.of(j).prompt()).setSeed(100 + 8 * j)
                            .setNumImages(sizes[j]).setSteps(6).build());
            while (events.hasNext()) {
                GenerateEvent e = events.next();
                if (e.hasImage()) {
                    images.add(RgbImage.fromPng(e.getImage().getPng().toByteArray(), "image"));
                }
            }
        }
        try (FeatureExtractor extractor = FeatureExtractor.load(EXTRACTOR, ExecutionOptions.CPU)) {
            FeatureExtractor.Extracted x = extractor.extract(images);
            Features real = extractor.reference();
            Features generated = Features.of(x.features());
            assertEquals("scene-features", r.getExtractor());
            assertEquals(real.count(), r.getReferenceImages());
            assertExactly(Fid.distance(real, generated), r.getFid(), "FID");
            assertExactly(Kid.of(real, generated), r.getKid(), "KID");
            PrecisionRecall.Result pr = PrecisionRecall.of(real, generated, PrecisionRecall.DEFAULT_K);
            assertExactly(pr.precision(), r.getPrecision(), "precision");
            assertExactly(pr.recall(), r.getRecall(), "recall");
            assertExactly(InceptionScore.ofLogits(x.logits(), 10).mean(), r.getInceptionScore(), "IS");
        }
        assertTrue(r.hasAdherence(), "the demo prompt set is judged");
        assertTrue(r.getAdherence().getColour() > 0.9, r.toString());
    }

    /**
     * Exactly: the run's jobs, in flight together, have their steps batched, and batched rows are the bytes of rows
     * run alone (StepBatchingTest); the measures then see the same features in the same (job) order.
     */
    private static void assertExactly(double expected, double actual, String what) {
        assertEquals(expected, actual, 0.0, what);
    }

    @Test
    void ownPromptsAreUsedInTurnAndNotJudged() {
        EvaluationResult r = evaluate(EvaluateRequest.newBuilder().setImages(16).setSteps(4).setImagesPerJob(4)
                .addPrompts("a large green square on a white background").build()).result();
        assertEquals(4, r.getResolved().getImagesPerJob());
        assertFalse(r.hasAdherence(), "adherence is judged on the demo prompt set only");
        assertTrue(Double.isFinite(r.getFid()) && r.getFid() > 0, r.toString());
    }

    @Test
    void badRequestsAreRefusedBeforeAnyJobRuns() {
        int before = orchestrator.engine.list(Caller.ANONYMOUS, 1000).finished();
        assertRefused(EvaluateRequest.newBuilder().setImages(3).build(), Status.Code.INVALID_ARGUMENT,
                "images must be in [16, 2048] (sd.orchestrator.max-evaluation-images), got 3");
        assertRefused(EvaluateRequest.newBuilder().setImages(4096).build(), Status.Code.INVALID_ARGUMENT,
                "images must be in [16, 2048] (sd.orchestrator.max-evaluation-images), got 4096");
        assertRefused(EvaluateRequest.newBuilder().setImagesPerJob(9).build(), Status.Code.INVALID_ARGUMENT,
                "images_per_job must be in [1, 8] (the server's num_images limit), got 9");
        EvaluateRequest.Builder many = EvaluateRequest.newBuilder();
        for (int i = 0; i < 1001; i++) {
            many.addPrompts("a red circle");
        }
        assertRefused(many.build(), Status.Code.INVALID_ARGUMENT, "prompts must hold at most 1000 prompts, got 1001");
        assertRefused(EvaluateRequest.newBuilder().setScheduler("nope").build(), Status.Code.INVALID_ARGUMENT,
                "scheduler");
        assertRefused(EvaluateRequest.newBuilder().setSteps(500).build(), Status.Code.INVALID_ARGUMENT, "steps");
        assertRefused(EvaluateRequest.newBuilder().addPrompts("a red circle").addPrompts("").build(),
                Status.Code.INVALID_ARGUMENT, "prompt");
        assertEquals(before, orchestrator.engine.list(Caller.ANONYMOUS, 1000).finished(), "no job ran");
    }

    private static void assertRefused(EvaluateRequest request, Status.Code code, String message) {
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> evaluate(request));
        assertEquals(code, e.getStatus().getCode(), e.getStatus().toString());
        assertTrue(e.getStatus().getDescription().contains(message), e.getStatus().getDescription());
    }

    @Test
    void aSecondRunWaitsItsTurnAndACancelledRunCancelsItsJobs() throws Exception {
        Context.CancellableContext call = Context.current().withCancellation();
        Iterator<EvaluateEvent> first = call.call(() -> stub().evaluate(EvaluateRequest.newBuilder().setImages(512)
                .setSteps(25).build()));
        assertTrue(call.call(first::next).hasProgress(), "the run is under way");
        StatusRuntimeException busy = assertThrows(StatusRuntimeException.class,
                () -> evaluate(EvaluateRequest.newBuilder().setImages(16).setSteps(2).build()));
        assertEquals(Status.Code.RESOURCE_EXHAUSTED, busy.getStatus().getCode());
        assertTrue(busy.getStatus().getDescription().contains("1 evaluation(s) running, the most at once"),
                busy.getStatus().getDescription());
        call.cancel(null);
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while ((orchestrator.engine.runningCount() > 0 || orchestrator.engine.waitingCount() > 0)
                && System.nanoTime() < until) {
            Thread.sleep(20);
        }
        assertEquals(0, orchestrator.engine.runningCount() + orchestrator.engine.waitingCount(),
                "the cancelled run's jobs stopped");
        // its slot is free again
        long retryUntil = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        EvaluationResult next = null;
        while (next == null) {
            try {
                next = evaluate(EvaluateRequest.newBuilder().setImages(16).setSteps(2).build()).result();
            } catch (StatusRuntimeException e) {
                if (e.getStatus().getCode() != Status.Code.RESOURCE_EXHAUSTED || System.nanoTime() > retryUntil) {
                    throw e;
                }
                Thread.sleep(50);
            }
        }
        assertEquals(16, next.getResolved().getImages());
    }

    /** How an evaluation of 16 images on {@code o} fails. */
    private static StatusRuntimeException refused(InProcessOrchestrator o) {
        return assertThrows(StatusRuntimeException.class, () -> {
            Iterator<EvaluateEvent> events = DiffusionGrpc.newBlockingStub(o.channel)
                    .evaluate(EvaluateRequest.newBuilder().setImages(16).build());
            while (events.hasNext()) {
                events.next();
            }
        });
    }

    @Test
    void aVaeStageWithoutAnExtractorIsAPreconditionTheOperatorFixes() {
        try (EmbeddedStages plain = EmbeddedStages.start(DemoModel.directory(), ExecutionOptions.CPU, 64 << 20,
                StageClients.Timeouts.DEFAULT);
             InProcessOrchestrator o = InProcessOrchestrator.start(plain.clients(), 0, 2)) {
            StatusRuntimeException e = refused(o);
            assertEquals(Status.Code.FAILED_PRECONDITION, e.getStatus().getCode());
            assertTrue(e.getStatus().getDescription().contains("serves no feature extractor: start it with "
                    + "sd.vae.extractor-dir"), e.getStatus().getDescription());
        }
    }

    @Test
    void anExtractorWithoutReferenceFeaturesIsAPreconditionToo(@TempDir Path dir) throws Exception {
        Files.copy(EXTRACTOR.resolve("model.onnx"), dir.resolve("model.onnx"));
        Files.writeString(dir.resolve("config.json"), Files.readString(EXTRACTOR.resolve("config.json"))
                .replaceAll("\"reference_features\"\\s*:\\s*\"[^\"]*\",?", ""));
        assertPrecondition(dir, "ships no reference features to compare with");
    }

    /**
     * An evaluation on a stack whose VAE stage serves the extractor in {@code dir} is refused FAILED_PRECONDITION
     * with {@code message}, before any job runs.
     */
    private static void assertPrecondition(Path dir, String message) {
        try (EmbeddedStages s = EmbeddedStages.start(DemoModel.directory(), ExecutionOptions.CPU,
                TorchGenerator.Kernel.AVX2, BatchSettings.DEFAULT, dir, 64 << 20, StageClients.Timeouts.DEFAULT);
             InProcessOrchestrator o = InProcessOrchestrator.start(s.clients(), 0, 2)) {
            StatusRuntimeException e = refused(o);
            assertEquals(Status.Code.FAILED_PRECONDITION, e.getStatus().getCode());
            assertTrue(e.getStatus().getDescription().contains(message), e.getStatus().getDescription());
            assertEquals(0, o.engine.list(Caller.ANONYMOUS, 1000).finished(), "no job ran");
        }
    }

    /**
     * A run whose caller's quota is taken by the caller's own job waits for it, then completes; one whose reference
     * set is too small for k = 3 neighbours is refused before any job.
     */
    @Test
    void aRunWaitsForItsCallersQuotaAndATinyReferenceSetIsRefused(@TempDir Path dir) throws Exception {
        Caller one = new Caller("one-job", 1, false);
        Evaluator evaluator = new Evaluator(orchestrator.engine, 1, 2048);
        try {
            var own = new java.util.concurrent.CompletableFuture<Throwable>();
            orchestrator.engine.submit(GenerateRequest.newBuilder().setPrompt("a red circle").setSteps(60).build(),
                    null, new org.sdserve.orchestrator.core.JobSubscriber() {
                        @Override
                        public boolean ready() {
                            return true;
                        }

                        @Override
                        public void event(long seq, org.sdserve.orchestrator.core.JobEvent event) {
                        }

                        @Override
                        public void end(Throwable failure) {
                            own.complete(failure);
                        }
                    }, one);
            var result = new java.util.concurrent.CompletableFuture<EvaluationResult>();
            evaluator.start(EvaluateRequest.newBuilder().setImages(16).setSteps(2).build(), null, one,
                    new Evaluator.Observer() {
                        @Override
                        public void progress(org.sdserve.proto.v1.EvaluationProgress p) {
                            assertTrue(own.isDone(), "no image before the caller's own job ended");
                        }

                        @Override
                        public void result(EvaluationResult r) {
                            result.complete(r);
                        }

                        @Override
                        public void failed(Throwable t) {
                            result.completeExceptionally(t);
                        }
                    });
            assertEquals(16, result.get(2, TimeUnit.MINUTES).getResolved().getImages());
            assertEquals(null, own.get(), "the caller's own job completed");
        } finally {
            evaluator.close();
        }

        Files.copy(EXTRACTOR.resolve("model.onnx"), dir.resolve("model.onnx"));
        Files.writeString(dir.resolve("config.json"), Files.readString(EXTRACTOR.resolve("config.json")));
        Files.write(dir.resolve("reference_features.npy"), org.sdserve.common.tensor.Npy.of(
                org.sdserve.common.tensor.TensorCodec.encode(new org.sdserve.common.tensor.FloatTensor(
                        new long[] {3, 64}, new float[3 * 64]))));
        assertPrecondition(dir, "has 3 reference features, fewer than the 4 the measures need");
    }

    /**
     * The reference set is read from the VAE stage once: a second run against the same extractor uses the kept set
     * and its own terms, and gives the same figures (the stages here count their ReferenceFeatures calls).
     */
    @Test
    void theReferenceSetIsReadOnceAndKeptForTheNextRun() {
        java.util.concurrent.atomic.AtomicInteger reads = new java.util.concurrent.atomic.AtomicInteger();
        org.sdserve.orchestrator.core.Stages real = stages.clients();
        org.sdserve.orchestrator.core.Stages counting = new org.sdserve.orchestrator.core.Stages() {
            @Override
            public org.sdserve.proto.v1.ModelDescription description() {
                return real.description();
            }

            @Override
            public org.sdserve.proto.v1.EncodeResponse encode(org.sdserve.proto.v1.EncodeRequest r) {
                return real.encode(r);
            }

            @Override
            public Iterator<org.sdserve.proto.v1.DenoiseEvent> denoise(org.sdserve.proto.v1.DenoiseRequest r) {
                return real.denoise(r);
            }

            @Override
            public org.sdserve.proto.v1.DecodeResponse decode(org.sdserve.proto.v1.DecodeRequest r) {
                return real.decode(r);
            }

            @Override
            public org.sdserve.proto.v1.VaeEncodeResponse encodeImage(org.sdserve.proto.v1.VaeEncodeRequest r) {
                return real.encodeImage(r);
            }

            @Override
            public org.sdserve.proto.v1.ExtractResponse extractFeatures(ExtractRequest r) {
                return real.extractFeatures(r);
            }

            @Override
            public org.sdserve.proto.v1.ExtractorDescription describeExtractor() {
                return real.describeExtractor();
            }

            @Override
            public Iterator<org.sdserve.proto.v1.ReferenceFeaturesChunk> referenceFeatures() {
                reads.incrementAndGet();
                return real.referenceFeatures();
            }
        };
        try (InProcessOrchestrator o = InProcessOrchestrator.start(counting, 0, 4)) {
            EvaluateRequest request = EvaluateRequest.newBuilder().setImages(16).setSteps(3).build();
            EvaluationResult first = null;
            EvaluationResult second = null;
            for (int run = 0; run < 2; run++) {
                EvaluationResult r = null;
                for (Iterator<EvaluateEvent> it = DiffusionGrpc.newBlockingStub(o.channel).evaluate(request);
                     it.hasNext(); ) {
                    EvaluateEvent e = it.next();
                    if (e.hasResult()) {
                        r = e.getResult();
                    }
                }
                if (run == 0) {
                    first = r;
                } else {
                    second = r;
                }
            }
            assertEquals(1, reads.get(), "one read of the reference set for two runs");
            assertEquals(first.toBuilder().clearTotalMs().build(), second.toBuilder().clearTotalMs().build());
        }
    }

    /** At shutdown a running run ends UNAVAILABLE (its client may retry elsewhere), and new ones are refused so. */
    @Test
    void aShutDownEvaluatorEndsItsRunsUnavailable() throws Exception {
        Evaluator evaluator = new Evaluator(orchestrator.engine, 1, 2048);
        var failure = new java.util.concurrent.CompletableFuture<Throwable>();
        var started = new java.util.concurrent.CountDownLatch(1);
        evaluator.start(EvaluateRequest.newBuilder().setImages(512).build(), null, Caller.ANONYMOUS,
                new Evaluator.Observer() {
                    @Override
                    public void progress(org.sdserve.proto.v1.EvaluationProgress p) {
                        started.countDown();
                    }

                    @Override
                    public void result(EvaluationResult r) {
                        failure.complete(null);
                    }

                    @Override
                    public void failed(Throwable t) {
                        failure.complete(t);
                    }
                });
        assertTrue(started.await(60, TimeUnit.SECONDS), "the run got going");
        evaluator.close();
        Status ended = Status.fromThrowable(failure.get(30, TimeUnit.SECONDS));
        assertEquals(Status.Code.UNAVAILABLE, ended.getCode());
        assertTrue(ended.getDescription().contains("shutting down"), ended.getDescription());
        StatusRuntimeException refused = assertThrows(StatusRuntimeException.class, () -> evaluator.start(
                EvaluateRequest.getDefaultInstance(), null, Caller.ANONYMOUS, null));
        assertEquals(Status.Code.UNAVAILABLE, refused.getStatus().getCode());
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (orchestrator.engine.runningCount() + orchestrator.engine.waitingCount() > 0
                && System.nanoTime() < until) {
            Thread.sleep(20);
        }
        assertEquals(0, orchestrator.engine.runningCount() + orchestrator.engine.waitingCount(), "its jobs stopped");
    }

    @Test
    void theFeaturesServiceRefusesWhatItCannotEmbed() {
        var channel = InProcessChannelBuilder.forName(stages.serverName("vae")).build();
        try {
            FeaturesGrpc.FeaturesBlockingStub features = FeaturesGrpc.newBlockingStub(channel);
            assertInvalid(() -> features.extract(ExtractRequest.getDefaultInstance()),
                    "png must hold 1 to 64 images, got 0");
            ExtractRequest.Builder many = ExtractRequest.newBuilder();
            for (int i = 0; i < 65; i++) {
                many.addPng(ByteString.copyFromUtf8("x"));
            }
            assertInvalid(() -> features.extract(many.build()), "png must hold 1 to 64 images, got 65");
            assertInvalid(() -> features.extract(ExtractRequest.newBuilder()
                    .addPng(ByteString.copyFromUtf8("not a png")).build()), "png[0]");
            ByteString side2048 = ByteString.copyFrom(new RgbImage(2048, 2048, new byte[2048 * 2048 * 3]).toPng());
            ExtractRequest.Builder large = ExtractRequest.newBuilder();
            for (int i = 0; i < 5; i++) {
                large.addPng(side2048);
            }
            assertInvalid(() -> features.extract(large.build()),
                    "png must hold at most 16777216 pixels together, got 20971520 by png[4]");
            assertInvalid(() -> features.extract(ExtractRequest.newBuilder().addPng(ByteString.copyFrom(
                    new RgbImage(2056, 8, new byte[2056 * 8 * 3]).toPng())).build()),
                    "png[0]: images up to 2048 x 2048 are accepted, this one declares 2056 x 8");
        } finally {
            channel.shutdownNow();
        }
    }

    private static void assertInvalid(Runnable call, String message) {
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class, call::run);
        assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode(), e.getStatus().toString());
        assertTrue(e.getStatus().getDescription().contains(message), e.getStatus().getDescription());
    }
}
