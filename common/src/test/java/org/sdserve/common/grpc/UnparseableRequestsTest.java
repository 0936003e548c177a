package org.sdserve.common.grpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.ClientCalls;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Raw request bytes that do not parse, over a real socket: INVALID_ARGUMENT, and the server still serves. */
class UnparseableRequestsTest {
    /** Sends and receives raw bytes, whatever the method's message type. */
    private static final MethodDescriptor.Marshaller<byte[]> BYTES = new MethodDescriptor.Marshaller<>() {
        @Override
        public InputStream stream(byte[] value) {
            return new ByteArrayInputStream(value);
        }

        @Override
        public byte[] parse(InputStream stream) {
            try {
                return stream.readAllBytes();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    };

    private static final MethodDescriptor<byte[], byte[]> CHECK = MethodDescriptor.<byte[], byte[]>newBuilder()
            .setType(MethodDescriptor.MethodType.UNARY).setFullMethodName("grpc.health.v1.Health/Check")
            .setRequestMarshaller(BYTES).setResponseMarshaller(BYTES).build();

    @Test
    void bytesThatDoNotParseGetInvalidArgument() throws Exception {
        try (ServiceHost host = ServiceHost.tcp("127.0.0.1", 0, 1 << 20, List.of())) {
            host.serving();
            ManagedChannel ch = NettyChannelBuilder.forTarget(host.where()).usePlaintext().build();
            try {
                byte[][] garbage = {
                    {0x0a, 0x03, (byte) 0xff, (byte) 0xfe, (byte) 0xfd}, // field 1 (a string): invalid UTF-8
                    {0x0c}, // a stray end-group tag
                    {0x0a, 0x7f, 0x61}, // a length past the end
                };
                for (byte[] g : garbage) {
                    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () ->
                            ClientCalls.blockingUnaryCall(ch, CHECK, io.grpc.CallOptions.DEFAULT
                                    .withDeadlineAfter(5, TimeUnit.SECONDS), g));
                    assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode(), e.getStatus().toString());
                    assertEquals("the request is not a valid grpc.health.v1.Health/Check HealthCheckRequest (its "
                            + "bytes do not parse)", e.getStatus().getDescription());
                }
                byte[] ok = ClientCalls.blockingUnaryCall(ch, CHECK, io.grpc.CallOptions.DEFAULT
                        .withDeadlineAfter(5, TimeUnit.SECONDS), HealthCheckRequest.getDefaultInstance().toByteArray());
                assertEquals(HealthCheckResponse.ServingStatus.SERVING, HealthCheckResponse.parseFrom(ok).getStatus());
            } finally {
                ch.shutdownNow();
            }
        }
    }
}
