package org.sdserve.vae.grpc;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.ManagedChannel;
import io.grpc.inprocess.InProcessChannelBuilder;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.sdserve.common.grpc.ServiceHost;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.tensor.FloatTensor;
import org.sdserve.common.tensor.TensorCodec;
import org.sdserve.eval.extract.FeatureExtractor;
import org.sdserve.proto.v1.DescribeExtractorRequest;
import org.sdserve.proto.v1.ExtractorDescription;
import org.sdserve.proto.v1.FeaturesGrpc;
import org.sdserve.proto.v1.ReferenceFeaturesChunk;
import org.sdserve.proto.v1.ReferenceFeaturesRequest;

/**
 * The Features service over a real gRPC channel (in-process transport) on the demo's extractor: its description,
 * and its reference set streamed in chunks (here of 100 KB: 400 rows of 64 float32) that add up to the file's rows.
 */
class FeaturesServiceTest {
    private static final Path DIR = Path.of(System.getProperty("sd.extractor.dir", "../models/scene-features"));
    private static FeatureExtractor extractor;
    private static ServiceHost host;
    private static ManagedChannel channel;

    @BeforeAll
    static void start() {
        extractor = FeatureExtractor.load(DIR, ExecutionOptions.CPU);
        host = ServiceHost.inProcess("features-service-test", 64 << 20,
                List.of(new FeaturesService(extractor, 400 * 64 * 4)));
        host.serving();
        channel = InProcessChannelBuilder.forName("features-service-test").build();
    }

    @AfterAll
    static void stop() {
        channel.shutdownNow();
        host.close();
        extractor.close();
    }

    @Test
    void theReferenceSetComesInChunksThatAddUpToTheFile() throws Exception {
        FeaturesGrpc.FeaturesBlockingStub stub = FeaturesGrpc.newBlockingStub(channel);
        ExtractorDescription d = stub.describeExtractor(DescribeExtractorRequest.getDefaultInstance());
        assertEquals("scene-features", d.getName());
        assertEquals(64, d.getSize());
        assertTrue(d.getHasLogits());
        assertEquals(2048, d.getReferenceCount());
        assertEquals(64, d.getDimension());
        // the SHA-256 of the .npy file's data bytes (after its version 1.0 header): the float32s themselves
        byte[] npy = java.nio.file.Files.readAllBytes(DIR.resolve("reference_features.npy"));
        int start = 10 + ((npy[8] & 0xff) | (npy[9] & 0xff) << 8);
        assertEquals(java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256")
                .digest(java.util.Arrays.copyOfRange(npy, start, npy.length))), d.getReferenceDigest());

        float[] file = extractor.referenceTensor().data();
        float[] streamed = new float[file.length];
        int at = 0;
        int chunks = 0;
        for (Iterator<ReferenceFeaturesChunk> it = stub.referenceFeatures(ReferenceFeaturesRequest
                .getDefaultInstance()); it.hasNext(); chunks++) {
            FloatTensor t = TensorCodec.decode(it.next().getFeatures(), "features");
            assertTrue(t.dim(0) <= 400 && t.dim(1) == 64, t.toString());
            System.arraycopy(t.data(), 0, streamed, at, t.data().length);
            at += t.data().length;
        }
        assertEquals(6, chunks, "2048 rows in chunks of 400");
        assertEquals(file.length, at);
        assertArrayEquals(file, streamed);
    }
}
