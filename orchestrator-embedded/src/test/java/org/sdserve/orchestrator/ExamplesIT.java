package org.sdserve.orchestrator;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.reflection.v1.ServerReflectionGrpc;
import io.grpc.reflection.v1.ServerReflectionRequest;
import io.grpc.reflection.v1.ServerReflectionResponse;
import io.grpc.stub.StreamObserver;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.sdserve.common.testing.DemoModel;
import org.sdserve.orchestrator.local.LocalCluster;
import org.sdserve.proto.v1.DiffusionGrpc;
import org.sdserve.proto.v1.GenerateEvent;
import org.sdserve.proto.v1.GenerateRequest;

/**
 * Other languages against the packaged orchestrator-embedded application: the Python client
 * (examples/python, Debian's python3-grpcio) and the Node.js client (examples/node, @grpc/grpc-js) each write the
 * PNG that Java's gRPC stub gets for the same request, byte for byte; server reflection lists and describes the
 * public service, as grpcurl uses it. The clients need /usr/bin/python3 with grpcio and protoc, and node with
 * {@code npm ci} in examples/node: without them those tests are skipped, unless -Dsd.examples.required=true (as
 * .ci/run sets), which makes them fail.
 */
class ExamplesIT {
    private static final Path ROOT = Path.of(System.getProperty("sd.root", "..")).toAbsolutePath().normalize();
    private static final String PROMPT = "a large green circle on a black background";
    private static LocalCluster server;
    private static ManagedChannel grpc;
    private static byte[] expected;

    @BeforeAll
    static void start() {
        server = LocalCluster.startEmbedded(ROOT, DemoModel.path(), Path.of("target", "it-logs"),
                Map.of("SD_ORCHESTRATOR_EXTRACTOR_DIR", ROOT.resolve("models/scene-features").toAbsolutePath()
                        .toString()));
        grpc = NettyChannelBuilder.forAddress("localhost", server.orchestrator().port()).usePlaintext()
                .maxInboundMessageSize(64 << 20).build();
        Iterator<GenerateEvent> events = DiffusionGrpc.newBlockingStub(grpc).withDeadlineAfter(60, TimeUnit.SECONDS)
                .generate(GenerateRequest.newBuilder().setPrompt(PROMPT).setSeed(21).setSteps(20).build());
        while (events.hasNext()) {
            GenerateEvent e = events.next();
            if (e.hasImage()) {
                expected = e.getImage().getPng().toByteArray();
            }
        }
    }

    @AfterAll
    static void stop() {
        if (grpc != null) {
            grpc.shutdownNow();
        }
        if (server != null) {
            server.close();
        }
    }

    /** Runs a client; its output goes to the test report. */
    private static void run(Path dir, List<String> command) throws Exception {
        run(dir, command, 0);
    }

    /** Runs a client that should exit with {@code status}; returns its output. */
    private static String run(Path dir, List<String> command, int status) throws Exception {
        Process p = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
        StringBuilder out = new StringBuilder();
        try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream()))) {
            r.lines().forEach(l -> {
                System.out.println(l);
                out.append(l).append('\n');
            });
        }
        assertTrue(p.waitFor(2, TimeUnit.MINUTES), "did not finish: " + command);
        assertEquals(status, p.exitValue(), command + " exited so:\n" + out);
        return out.toString();
    }

    private static void require(String missing) {
        if (Boolean.getBoolean("sd.examples.required")) {
            assertEquals(null, missing, "the example cannot run");
        }
        assumeTrue(missing == null, () -> "example skipped: " + missing);
    }

    private static boolean runs(String... command) {
        try {
            return new ProcessBuilder(command).redirectErrorStream(true).start().waitFor() == 0;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }

    @Test
    void thePythonClientWritesTheSameImage() throws Exception {
        require(!runs("/usr/bin/python3", "-c", "import grpc, google.protobuf") ? "apt-get install python3-grpcio "
                + "python3-protobuf" : !runs("protoc", "--version") ? "apt-get install protobuf-compiler" : null);
        Path out = Files.createTempFile("example-python", ".png");
        out.toFile().deleteOnExit();
        run(ROOT.resolve("examples/python"), List.of("./generate.sh", PROMPT, "--seed", "21", "--steps", "20",
                "--target", "localhost:" + server.orchestrator().port(), "--out", out.toString()));
        assertArrayEquals(expected, Files.readAllBytes(out));
    }

    /** The Python quality gate: Evaluate's figures, passing under a loose bound and failing (3) under a tight one. */
    @Test
    void thePythonQualityGatePassesAndFailsOnFid() throws Exception {
        require(!runs("/usr/bin/python3", "-c", "import grpc, google.protobuf") ? "apt-get install python3-grpcio "
                + "python3-protobuf" : !runs("protoc", "--version") ? "apt-get install protobuf-compiler" : null);
        List<String> gate = List.of("./evaluate.sh", "--images", "16", "--steps", "4", "--target",
                "localhost:" + server.orchestrator().port(), "--max-fid");
        String passed = run(ROOT.resolve("examples/python"), concat(gate, "10000"), 0);
        assertTrue(passed.contains("quality gate passed: FID ") && passed.contains("precision "), passed);
        String failed = run(ROOT.resolve("examples/python"), concat(gate, "0.001"), 3);
        assertTrue(failed.contains("quality gate failed: FID "), failed);
    }

    private static List<String> concat(List<String> list, String last) {
        List<String> out = new java.util.ArrayList<>(list);
        out.add(last);
        return out;
    }

    @Test
    void theNodeClientWritesTheSameImage() throws Exception {
        Path dir = ROOT.resolve("examples/node");
        require(!Files.isDirectory(dir.resolve("node_modules/@grpc/grpc-js")) ? "run npm ci in " + dir
                : !runs("node", "--version") ? "install node" : null);
        Path out = Files.createTempFile("example-node", ".png");
        out.toFile().deleteOnExit();
        run(dir, List.of("node", "generate.mjs", PROMPT, "--seed", "21", "--steps", "20", "--target",
                "localhost:" + server.orchestrator().port(), "--out", out.toString()));
        assertArrayEquals(expected, Files.readAllBytes(out));
    }

    /** What grpcurl asks: the services, then the file that defines one (v1 reflection, as grpcurl speaks it). */
    @Test
    void reflectionListsAndDescribesThePublicService() throws Exception {
        List<ServerReflectionResponse> answers = new ArrayList<>();
        CompletableFuture<Void> done = new CompletableFuture<>();
        StreamObserver<ServerReflectionRequest> requests = ServerReflectionGrpc.newStub(grpc)
                .withDeadlineAfter(10, TimeUnit.SECONDS).serverReflectionInfo(new StreamObserver<>() {
                    @Override
                    public void onNext(ServerReflectionResponse r) {
                        answers.add(r);
                    }

                    @Override
                    public void onError(Throwable t) {
                        done.completeExceptionally(t);
                    }

                    @Override
                    public void onCompleted() {
                        done.complete(null);
                    }
                });
        requests.onNext(ServerReflectionRequest.newBuilder().setListServices("").build());
        requests.onNext(ServerReflectionRequest.newBuilder().setFileContainingSymbol("sd.v1.Diffusion").build());
        requests.onCompleted();
        done.get(10, TimeUnit.SECONDS);
        List<String> services = answers.get(0).getListServicesResponse().getServiceList().stream()
                .map(s -> s.getName()).toList();
        assertTrue(services.containsAll(List.of("sd.v1.Diffusion", "grpc.health.v1.Health")), services.toString());
        com.google.protobuf.DescriptorProtos.FileDescriptorProto file = com.google.protobuf.DescriptorProtos
                .FileDescriptorProto.parseFrom(answers.get(1).getFileDescriptorResponse().getFileDescriptorProto(0));
        assertEquals("sd/v1/diffusion.proto", file.getName());
        assertTrue(file.getServiceList().stream().anyMatch(s -> s.getName().equals("Diffusion")));
    }
}
