package org.sdserve.orchestrator;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.BindableService;
import io.grpc.ForwardingServerCall;
import io.grpc.ForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.sdserve.common.grpc.ServiceHost;
import org.sdserve.common.grpc.StageChannels;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.testing.DemoModel;
import org.sdserve.denoise.grpc.DenoiserService;
import org.sdserve.orchestrator.core.EngineSettings;
import org.sdserve.orchestrator.embedded.EmbeddedStages;
import org.sdserve.orchestrator.grpc.StageClients;
import org.sdserve.proto.v1.DenoiseEvent;
import org.sdserve.proto.v1.DenoiseRequest;
import org.sdserve.proto.v1.GenerateEvent;
import org.sdserve.proto.v1.GenerateRequest;

/**
 * A denoiser replica that goes away in the middle of a job (its server shut down: the stream breaks with
 * UNAVAILABLE, as when a process dies): the job continues on the other replica from its last checkpoint, and its
 * image is byte-identical to an undisturbed run's, for multistep, two-stage and stochastic schedulers. Real gRPC.
 */
class DenoiseResumeTest {
    private static EmbeddedStages stages;

    @BeforeAll
    static void start() {
        stages = EmbeddedStages.start(DemoModel.directory(), ExecutionOptions.CPU, 64 << 20,
                StageClients.Timeouts.DEFAULT);
    }

    @AfterAll
    static void stop() {
        stages.close();
    }

    /** Two denoiser replicas (on the same model in memory); the first to send checkpoint {@code dieAt} dies. */
    private static final class TwoReplicas implements AutoCloseable {
        final List<ServiceHost> hosts = new ArrayList<>();
        final List<String> names = new ArrayList<>();
        final List<Integer> resumedFrom = Collections.synchronizedList(new ArrayList<>());
        final AtomicBoolean killed = new AtomicBoolean();

        TwoReplicas(int dieAt) {
            for (int i = 0; i < 2; i++) {
                String name = "denoiser-" + i + "-" + UUID.randomUUID();
                ServiceHost[] self = new ServiceHost[1];
                ServerInterceptor watch = new ServerInterceptor() {
                    @Override
                    public <Q, A> ServerCall.Listener<Q> interceptCall(ServerCall<Q, A> call, Metadata headers,
                                                                      ServerCallHandler<Q, A> next) {
                        ServerCall<Q, A> watched = new ForwardingServerCall.SimpleForwardingServerCall<>(call) {
                            @Override
                            public void sendMessage(A message) {
                                super.sendMessage(message);
                                if (message instanceof DenoiseEvent e && e.hasCheckpoint()
                                        && e.getCheckpoint().getStep() == dieAt && killed.compareAndSet(false, true)) {
                                    new Thread(self[0]::closeNow).start(); // calls in flight: UNAVAILABLE
                                }
                            }
                        };
                        return new ForwardingServerCallListener.SimpleForwardingServerCallListener<>(
                                next.startCall(watched, headers)) {
                            @Override
                            public void onMessage(Q message) {
                                if (message instanceof DenoiseRequest r && r.hasResume()) {
                                    resumedFrom.add(r.getResume().getStep());
                                }
                                super.onMessage(message);
                            }
                        };
                    }
                };
                DenoiserService service = new DenoiserService(stages.denoiser());
                BindableService watched = () -> ServerInterceptors.intercept(service, watch);
                self[0] = ServiceHost.inProcess(name, 64 << 20, List.of(watched));
                hosts.add(self[0]);
                names.add(name);
            }
        }

        StageClients clients() {
            return new StageClients(StageChannels.inProcess("text-encoder", stages.serverName("text"), 64 << 20),
                    StageChannels.inProcess("denoiser", names, 64 << 20),
                    StageChannels.inProcess("vae", stages.serverName("vae"), 64 << 20), StageClients.Timeouts.DEFAULT);
        }

        @Override
        public void close() {
            hosts.forEach(ServiceHost::close);
        }
    }

    private static GenerateRequest request(String scheduler) {
        return GenerateRequest.newBuilder().setPrompt("a yellow square on a blue background").setSeed(21)
                .setSteps(24).setScheduler(scheduler).setPreviewInterval(4).build();
    }

    private static List<Integer> denoisingSteps(Events e) {
        return e.of(GenerateEvent.EventCase.PROGRESS).stream().map(GenerateEvent::getProgress)
                .filter(p -> p.getStage() == org.sdserve.proto.v1.Stage.STAGE_DENOISING).map(p -> (int) p.getStep())
                .filter(s -> s > 0).toList();
    }

    @Test
    void aJobWhoseReplicaDiesContinuesFromItsCheckpointWithTheSameImage() {
        for (String scheduler : List.of("dpmpp_2m", "pndm", "heun", "unipc", "lms", "euler_a")) {
            Events reference;
            try (InProcessOrchestrator o = InProcessOrchestrator.start(stages.clients(), 1L, 1)) {
                reference = Events.generate(o.channel, request(scheduler));
            }
            try (TwoReplicas replicas = new TwoReplicas(10); StageClients clients = replicas.clients();
                 InProcessOrchestrator o = InProcessOrchestrator.start(clients, 1L, EngineSettings.DEFAULT)) {
                Events e = Events.generate(o.channel, request(scheduler));
                assertTrue(replicas.killed.get(), scheduler + ": a replica died mid-job");
                assertEquals(1, replicas.resumedFrom.size(), scheduler + ": continued once");
                int from = replicas.resumedFrom.get(0);
                assertTrue(from >= 10 && from % 5 == 0, scheduler + ": from a checkpoint at or after 10, got " + from);
                assertArrayEquals(reference.png(0), e.png(0), scheduler + ": the same image");
                int calls = denoisingSteps(reference).size();
                assertEquals(IntStream.rangeClosed(1, calls).boxed().toList(), denoisingSteps(e),
                        scheduler + ": every step reported once, in order");
                assertEquals(reference.of(GenerateEvent.EventCase.PREVIEW).size(),
                        e.of(GenerateEvent.EventCase.PREVIEW).size(), scheduler + ": every preview once");
            }
        }
    }

    @Test
    void withoutCheckpointsTheJobStartsItsDenoisingOverAndEndsTheSame() {
        Events reference;
        try (InProcessOrchestrator o = InProcessOrchestrator.start(stages.clients(), 1L, 1)) {
            reference = Events.generate(o.channel, request("dpmpp_2m"));
        }
        // checkpoints every 10 calls for the trigger, but the orchestrator asks for none: no resume point
        try (TwoReplicas replicas = new TwoReplicas(10); StageClients clients = replicas.clients();
             InProcessOrchestrator o = InProcessOrchestrator.start(clients, 1L,
                     EngineSettings.DEFAULT.withCheckpoints(10, 4))) {
            Events e = Events.generate(o.channel, request("dpmpp_2m"));
            assertTrue(replicas.killed.get());
            assertEquals(List.of(10), replicas.resumedFrom);
            assertArrayEquals(reference.png(0), e.png(0));
        }
        try (TwoReplicas replicas = new TwoReplicas(10); StageClients clients = replicas.clients();
             InProcessOrchestrator o = InProcessOrchestrator.start(clients, 1L,
                     EngineSettings.DEFAULT.withCheckpoints(0, 4))) {
            Events e = Events.generate(o.channel, request("dpmpp_2m"));
            assertEquals(List.of(), replicas.resumedFrom, "no checkpoint was ever sent");
            assertArrayEquals(reference.png(0), e.png(0));
        }
    }

    @Test
    void aJobOutOfDenoiseAttemptsFailsWithTheReplicasStatus() {
        try (TwoReplicas replicas = new TwoReplicas(10); StageClients clients = replicas.clients();
             InProcessOrchestrator o = InProcessOrchestrator.start(clients, 1L,
                     EngineSettings.DEFAULT.withCheckpoints(5, 1))) {
            StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
                    () -> Events.generate(o.channel, request("ddim")));
            assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());
            assertEquals(List.of(), replicas.resumedFrom);
        }
    }
}
