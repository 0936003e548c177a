package org.sdserve.common.grpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.BindableService;
import io.grpc.MethodDescriptor;
import io.grpc.ServerServiceDefinition;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.ServerCalls;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A {@code dns:///} stage target on real servers: the name stage-pool.test has two loopback addresses (the test
 * JVM's hosts file, src/test/resources/hosts, as a headless Service's DNS name has one per ready pod); calls go
 * round-robin over both, and a replica that says NOT_SERVING is left out by client-side health checking until it
 * serves.
 */
class DnsDiscoveryTest {
    private static final MethodDescriptor.Marshaller<String> TEXT = new MethodDescriptor.Marshaller<>() {
        @Override
        public InputStream stream(String value) {
            return new ByteArrayInputStream(value.getBytes(StandardCharsets.UTF_8));
        }

        @Override
        public String parse(InputStream stream) {
            try {
                return new String(stream.readAllBytes(), StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    };

    /** test.Who/Name answers the address of the server that took the call. */
    private static final MethodDescriptor<String, String> WHO = MethodDescriptor.<String, String>newBuilder()
            .setType(MethodDescriptor.MethodType.UNARY).setFullMethodName("test.Who/Name")
            .setRequestMarshaller(TEXT).setResponseMarshaller(TEXT).build();

    private static BindableService who(String name) {
        return () -> ServerServiceDefinition.builder("test.Who").addMethod(WHO,
                ServerCalls.asyncUnaryCall((String request, io.grpc.stub.StreamObserver<String> out) -> {
                    out.onNext(name);
                    out.onCompleted();
                })).build();
    }

    private static Map<String, Integer> spread(StageChannels c, int calls) {
        Map<String, Integer> seen = new HashMap<>();
        for (int i = 0; i < calls; i++) {
            String name = ClientCalls.blockingUnaryCall(c.next(), WHO,
                    io.grpc.CallOptions.DEFAULT.withDeadlineAfter(5, TimeUnit.SECONDS).withWaitForReady(), "");
            seen.merge(name, 1, Integer::sum);
        }
        return seen;
    }

    @Test
    void aDnsTargetSpreadsCallsOverEveryAddressThatServes() throws Exception {
        assertEquals(2, InetAddress.getAllByName("stage-pool.test").length, "the test hosts file is not in use");
        try (ServiceHost a = ServiceHost.tcp("127.0.0.2", 0, 1 << 20, List.of(who("a")));
             ServiceHost b = ServiceHost.tcp("127.0.0.3", a.port(), 1 << 20, List.of(who("b")));
             StageChannels c = StageChannels.tcp("denoiser", List.of("dns:///stage-pool.test:" + a.port()),
                     1 << 20)) {
            a.serving(); // b stays NOT_SERVING, as a replica does while it loads its model
            assertEquals(Map.of("a", 8), spread(c, 8), "calls reached a replica that does not serve");
            b.serving();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (spread(c, 2).size() < 2 && System.nanoTime() < deadline) { // the health watch sees b soon
                Thread.sleep(50);
            }
            assertEquals(Map.of("a", 4, "b", 4), spread(c, 8), "round-robin over both addresses once both serve");
        }
    }
}
