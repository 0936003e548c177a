package org.sdserve.orchestrator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.MetadataUtils;
import java.io.InputStream;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.sdserve.common.grpc.Tls;
import org.sdserve.common.testing.DemoModel;
import org.sdserve.orchestrator.local.LocalCluster;
import org.sdserve.proto.v1.DenoiserGrpc;
import org.sdserve.proto.v1.DescribeRequest;
import org.sdserve.proto.v1.DiffusionGrpc;
import org.sdserve.proto.v1.GenerateEvent;
import org.sdserve.proto.v1.GenerateRequest;

/**
 * TLS on every port of the five processes, with certificates made here by openssl (a CA, a server certificate for
 * localhost, a client certificate for the orchestrator): the stages require the orchestrator's client certificate
 * (mutual TLS), the public gRPC port and the HTTPS port take TLS only, and the public API takes bearer tokens.
 * A plaintext client is refused, a client without a token gets UNAUTHENTICATED, one with both gets its image.
 */
class TlsIT {
    private static final Path ROOT = Path.of(System.getProperty("sd.root", ".."));
    private static final String TOKEN = "tls-test-token-0123456789";

    private static void openssl(Path dir, String... args) throws Exception {
        List<String> cmd = new java.util.ArrayList<>(List.of("openssl"));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0, cmd + ": " + out);
    }

    /** ca.pem; server.pem/key for localhost and 127.0.0.1; client.pem/key (client authentication). */
    private static void certificates(Path dir) throws Exception {
        openssl(dir, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days",
                "2", "-subj", "/CN=sdserve test CA");
        Files.writeString(dir.resolve("server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                + "extendedKeyUsage=serverAuth\n");
        Files.writeString(dir.resolve("client.ext"), "extendedKeyUsage=clientAuth\n");
        for (String who : List.of("server", "client")) {
            openssl(dir, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", who + ".key", "-out", who + ".csr",
                    "-subj", "/CN=" + (who.equals("server") ? "localhost" : "orchestrator"));
            openssl(dir, "x509", "-req", "-in", who + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                    "-out", who + ".pem", "-days", "2", "-extfile", who + ".ext");
        }
    }

    @Test
    void everyPortTakesTlsOnlyAndThePublicApiATokenToo(@TempDir Path dir) throws Exception {
        certificates(dir);
        String ca = dir.resolve("ca.pem").toString();
        String cert = dir.resolve("server.pem").toString();
        String key = dir.resolve("server.key").toString();
        Map<String, String> stages = new HashMap<>();
        for (String prefix : List.of("SD_TEXT_ENCODER", "SD_DENOISER", "SD_VAE")) {
            stages.put(prefix + "_TLS_CERT", cert);
            stages.put(prefix + "_TLS_KEY", key);
            stages.put(prefix + "_TLS_CLIENT_CA", ca);
        }
        Path tokens = dir.resolve("tokens.txt");
        Files.writeString(tokens, "test " + TOKEN + " all\n");
        int https = LocalCluster.freePort();
        Map<String, String> orchestrator = new HashMap<>(Map.of(
                "SD_ORCHESTRATOR_TLS_CERT", cert, "SD_ORCHESTRATOR_TLS_KEY", key,
                "SD_ORCHESTRATOR_STAGE_TLS_CA", ca, "SD_ORCHESTRATOR_STAGE_TLS_CERT", dir.resolve("client.pem").toString(),
                "SD_ORCHESTRATOR_STAGE_TLS_KEY", dir.resolve("client.key").toString(),
                "SD_ORCHESTRATOR_TOKENS_FILE", tokens.toString(),
                "QUARKUS_HTTP_SSL_CERTIFICATE_FILES", cert, "QUARKUS_HTTP_SSL_CERTIFICATE_KEY_FILES", key,
                "QUARKUS_HTTP_SSL_PORT", Integer.toString(https), "QUARKUS_HTTP_INSECURE_REQUESTS", "disabled"));
        Tls client = new Tls(dir.resolve("client.pem").toString(), dir.resolve("client.key").toString(), ca);
        try (LocalCluster cluster = LocalCluster.start(ROOT, DemoModel.path(), new LocalCluster.Replicas(1, 1, 1),
                Path.of("target", "it-logs"), orchestrator, stages, Optional.of(client))) {
            int port = cluster.orchestrator().port();
            // plaintext to the public port: refused at the handshake
            ManagedChannel plain = NettyChannelBuilder.forAddress("localhost", port).usePlaintext().build();
            try {
                Status s = assertThrows(StatusRuntimeException.class, () -> DiffusionGrpc.newBlockingStub(plain)
                        .withDeadlineAfter(10, TimeUnit.SECONDS).generate(GenerateRequest.newBuilder()
                                .setPrompt("a red circle").build()).next()).getStatus();
                assertEquals(Status.Code.UNAVAILABLE, s.getCode(), s.toString());
            } finally {
                plain.shutdownNow();
            }
            // TLS (trusting the CA) without a token: UNAUTHENTICATED; with one: the image, the stages over mTLS
            ManagedChannel tls = NettyChannelBuilder.forAddress("localhost", port).sslContext(
                    new Tls(null, null, ca).client()).maxInboundMessageSize(64 << 20).build();
            try {
                Status s = assertThrows(StatusRuntimeException.class, () -> DiffusionGrpc.newBlockingStub(tls)
                        .withDeadlineAfter(10, TimeUnit.SECONDS).generate(GenerateRequest.newBuilder()
                                .setPrompt("a red circle").build()).next()).getStatus();
                assertEquals(Status.Code.UNAUTHENTICATED, s.getCode());
                Metadata auth = new Metadata();
                auth.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + TOKEN);
                int images = 0;
                for (var it = DiffusionGrpc.newBlockingStub(tls).withDeadlineAfter(60, TimeUnit.SECONDS)
                        .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(auth))
                        .generate(GenerateRequest.newBuilder().setPrompt("a red circle on a blue background")
                                .setSteps(6).build()); it.hasNext(); ) {
                    GenerateEvent e = it.next();
                    images += e.hasImage() ? 1 : 0;
                }
                assertEquals(1, images);
            } finally {
                tls.shutdownNow();
            }
            // a stage takes only clients with a certificate of the CA (mutual TLS)
            LocalCluster.Service denoiser = cluster.services().get(1);
            ManagedChannel noCert = NettyChannelBuilder.forAddress("localhost", denoiser.port())
                    .sslContext(new Tls(null, null, ca).client()).build();
            try {
                assertEquals(Status.Code.UNAVAILABLE, assertThrows(StatusRuntimeException.class,
                        () -> DenoiserGrpc.newBlockingStub(noCert).withDeadlineAfter(10, TimeUnit.SECONDS)
                                .describe(DescribeRequest.getDefaultInstance())).getStatus().getCode());
            } finally {
                noCert.shutdownNow();
            }
            ManagedChannel withCert = cluster.channel(denoiser);
            try {
                assertEquals("sd-shapes-64", DenoiserGrpc.newBlockingStub(withCert).withDeadlineAfter(10,
                        TimeUnit.SECONDS).describe(DescribeRequest.getDefaultInstance()).getModel());
            } finally {
                withCert.shutdownNow();
            }
            // HTTPS only: the plaintext HTTP port is closed, HTTPS trusting the CA answers with the token
            HttpClient httpsClient = HttpClient.newBuilder().sslContext(trusting(dir.resolve("ca.pem"))).build();
            String model = "https://localhost:" + https + "/v1/model";
            HttpResponse<String> r = null;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (r == null) {
                try {
                    r = httpsClient.send(HttpRequest.newBuilder(URI.create(model)).header("Authorization",
                            "Bearer " + TOKEN).build(), HttpResponse.BodyHandlers.ofString());
                } catch (ConnectException e) {
                    if (System.nanoTime() > deadline) {
                        throw e;
                    }
                    Thread.sleep(200);
                }
            }
            assertEquals(200, r.statusCode(), r.body());
            assertThrows(ConnectException.class, () -> HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                    URI.create("http://127.0.0.1:" + cluster.httpPort() + "/v1/model")).build(),
                    HttpResponse.BodyHandlers.discarding()));
        }
    }

    private static SSLContext trusting(Path caPem) throws Exception {
        KeyStore trust = KeyStore.getInstance(KeyStore.getDefaultType());
        trust.load(null, null);
        try (InputStream in = Files.newInputStream(caPem)) {
            trust.setCertificateEntry("ca", CertificateFactory.getInstance("X.509").generateCertificate(in));
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        SSLContext c = SSLContext.getInstance("TLS");
        c.init(null, tmf.getTrustManagers(), null);
        return c;
    }
}
