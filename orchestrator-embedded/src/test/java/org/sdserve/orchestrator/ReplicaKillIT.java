package org.sdserve.orchestrator;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;
import org.sdserve.common.testing.DemoModel;
import org.sdserve.orchestrator.local.LocalCluster;
import org.sdserve.proto.v1.DiffusionGrpc;
import org.sdserve.proto.v1.GenerateEvent;
import org.sdserve.proto.v1.GenerateRequest;

/**
 * kill -9 of one of two replicas of each stage in turn, on the packaged processes, while 20 jobs run: every job
 * completes and every image is byte-identical to the one the undisturbed cluster made. A denoiser's jobs continue
 * on the other denoiser from their last checkpoint; the VAE's and the text encoder's calls are made again on the
 * other replica.
 */
class ReplicaKillIT {
    private static final Path ROOT = Path.of(System.getProperty("sd.root", ".."));
    private static final int JOBS = 20;
    private static final List<String> SCHEDULERS = List.of("dpmpp_2m", "pndm", "heun", "euler_a", "unipc", "lms",
            "ddim");
    private static final List<String> PROMPTS = List.of("a red circle on a white background",
            "a purple cross on an orange background", "a yellow square on a blue background");

    private static GenerateRequest request(int i) {
        return GenerateRequest.newBuilder().setPrompt(PROMPTS.get(i % PROMPTS.size())).setSeed(1000 + i)
                .setSteps(30).setScheduler(SCHEDULERS.get(i % SCHEDULERS.size())).build();
    }

    /** 20 jobs at once; once {@code killWhen} holds for the calls so far, kill -9 {@code victim} (if any). */
    private static List<RecordedCall> round(ManagedChannel ch, LocalCluster.Service victim,
                                            Predicate<List<RecordedCall>> killWhen) throws Exception {
        List<RecordedCall> calls = new ArrayList<>();
        for (int i = 0; i < JOBS; i++) {
            RecordedCall c = new RecordedCall();
            DiffusionGrpc.newStub(ch).withDeadlineAfter(180, TimeUnit.SECONDS).generate(request(i), c);
            calls.add(c);
        }
        if (victim != null) {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!killWhen.test(calls)) {
                assertTrue(System.nanoTime() < deadline, "the moment to kill " + victim.module() + " never came");
                Thread.sleep(2);
            }
            victim.process().destroyForcibly(); // SIGKILL
            assertTrue(victim.process().waitFor(15, TimeUnit.SECONDS));
        }
        for (RecordedCall c : calls) {
            c.closed.get(180, TimeUnit.SECONDS);
        }
        return calls;
    }

    private static LocalCluster.Service first(LocalCluster cluster, String module) {
        return cluster.services().stream().filter(s -> s.module().equals(module)).findFirst().orElseThrow();
    }

    private static void assertSameImages(List<byte[]> reference, List<RecordedCall> calls, String round) {
        int ok = 0;
        for (int i = 0; i < JOBS; i++) {
            Status s = calls.get(i).closed.join();
            assertEquals(Status.Code.OK, s.getCode(), round + ": job " + i + " " + s);
            assertArrayEquals(reference.get(i), calls.get(i).of(GenerateEvent.EventCase.IMAGE).get(0).getImage()
                    .getPng().toByteArray(), round + ": job " + i + "'s image");
            ok++;
        }
        System.out.printf("ReplicaKillIT %s: %d/%d jobs completed, images byte-identical%n", round, ok, JOBS);
    }

    private static long count(Path log, String text) throws Exception {
        return Files.readAllLines(log).stream().filter(l -> l.contains(text)).count();
    }

    @Test
    void killingOneOfTwoReplicasOfAnyStageLosesNoJobAndChangesNoImage() throws Exception {
        try (LocalCluster cluster = LocalCluster.start(ROOT, DemoModel.path(), new LocalCluster.Replicas(2, 2, 2),
                Path.of("target", "it-logs"), Map.of("SD_ORCHESTRATOR_HEALTH_CHECK_INTERVAL", "PT0.5S"), Map.of())) {
            ManagedChannel ch = NettyChannelBuilder.forAddress("localhost", cluster.orchestrator().port())
                    .usePlaintext().maxInboundMessageSize(64 << 20).build();
            try {
                List<byte[]> reference = new ArrayList<>();
                for (RecordedCall c : round(ch, null, calls -> true)) {
                    assertEquals(Status.Code.OK, c.closed.join().getCode(), "undisturbed: " + c.closed.join());
                    reference.add(c.of(GenerateEvent.EventCase.IMAGE).get(0).getImage().getPng().toByteArray());
                }
                Path log = cluster.orchestrator().log();

                // a denoiser dies with jobs in the middle of their steps
                assertSameImages(reference, round(ch, first(cluster, "denoiser-svc"),
                        calls -> calls.stream().anyMatch(c -> c.lastStep() >= 12)), "denoiser killed");
                long resumed = count(log, "continuing on another replica from step");
                System.out.printf("ReplicaKillIT denoiser killed: %d job(s) continued from a checkpoint, %d from "
                        + "the start%n", resumed, count(log, "continuing on another replica from the start"));
                assertTrue(resumed >= 1, "no job was continued from a checkpoint: the kill missed them all");

                // a VAE dies once decoding has begun, with more to come
                assertSameImages(reference, round(ch, first(cluster, "vae-svc"),
                        calls -> calls.stream().anyMatch(c -> !c.of(GenerateEvent.EventCase.IMAGE).isEmpty())),
                        "vae killed");

                // a text encoder dies with most jobs still to be encoded
                assertSameImages(reference, round(ch, first(cluster, "text-encoder-svc"),
                        calls -> calls.stream().anyMatch(c -> c.progressed.isDone())), "text encoder killed");
                System.out.printf("ReplicaKillIT: %d unary stage call(s) made again on the other replica%n",
                        count(log, "made again on the next replica"));
            } finally {
                ch.shutdownNow();
            }
        }
    }
}
