package org.sdserve.orchestrator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.sdserve.common.testing.DemoModel;
import org.sdserve.orchestrator.local.LocalCluster;

/**
 * The web page in a real browser: orchestrator/src/test/browser/ui.test.mjs drives headless Chromium (Debian's
 * {@code chromium}, through playwright-core) against the packaged orchestrator-embedded application, and watches
 * the same jobs over gRPC to time the previews. Needs node, {@code npm ci} in that folder, and /usr/bin/chromium:
 * without them the test is skipped, unless -Dsd.browser.required=true (as .ci/run sets), which makes it fail.
 */
class BrowserIT {
    private static final Path ROOT = Path.of(System.getProperty("sd.root", "..")).toAbsolutePath().normalize();
    private static final Path TESTS = ROOT.resolve("orchestrator/src/test/browser");
    private static final Path CHROMIUM = Path.of(System.getenv().getOrDefault("SD_CHROMIUM", "/usr/bin/chromium"));

    @Test
    void thePageGeneratesShowsPreviewsCancelsAndSurvivesADroppedStream() throws Exception {
        String missing = !Files.isDirectory(TESTS.resolve("node_modules/playwright-core"))
                ? "run npm ci in " + TESTS : !Files.isExecutable(CHROMIUM) ? "install chromium (apt-get install chromium)"
                : !onPath("node") ? "install node" : null;
        if (Boolean.getBoolean("sd.browser.required")) {
            assertEquals(null, missing, "the browser test cannot run");
        }
        assumeTrue(missing == null, () -> "browser test skipped: " + missing);

        Path out = Path.of("target", "browser").toAbsolutePath();
        try (LocalCluster server = LocalCluster.startEmbedded(ROOT, DemoModel.path(), Path.of("target", "it-logs"),
                Map.of("SD_ORCHESTRATOR_MAX_CONCURRENT_JOBS", "1", "SD_ORCHESTRATOR_EXTRACTOR_DIR",
                        ROOT.resolve("models/scene-features").toAbsolutePath().toString()))) {
            String http = "http://127.0.0.1:" + server.httpPort();
            awaitHttp(http);
            ProcessBuilder pb = new ProcessBuilder("node", "ui.test.mjs").directory(TESTS.toFile())
                    .redirectErrorStream(true);
            pb.environment().putAll(Map.of("SD_HTTP", http, "SD_GRPC", "127.0.0.1:" + server.orchestrator().port(),
                    "SD_PROTO", ROOT.resolve("proto/src/main/proto").toString(), "SD_OUT", out.toString(),
                    "SD_CHROMIUM", CHROMIUM.toString()));
            Process node = pb.start();
            try (var lines = new java.io.BufferedReader(new java.io.InputStreamReader(node.getInputStream()))) {
                lines.lines().forEach(System.out::println); // its steps and the preview figures, in the report
            }
            if (!node.waitFor(5, TimeUnit.MINUTES)) {
                node.destroyForcibly();
                throw new AssertionError("the browser test did not finish in 5 minutes");
            }
            assertEquals(0, node.exitValue(), "ui.test.mjs failed (its output is above; screenshots in " + out + ")");
        }
    }

    private static boolean onPath(String command) {
        try {
            return new ProcessBuilder(command, "--version").redirectErrorStream(true).start().waitFor() == 0;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }

    static void awaitHttp(String base) throws Exception {
        awaitUrl(base + "/v1/model");
    }

    /** Waits until {@code url} answers 200 (gRPC serves before Quarkus opens the HTTP port). */
    static void awaitUrl(String url) throws Exception {
        HttpClient client = HttpClient.newHttpClient();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (true) { // gRPC serves before Quarkus opens the HTTP port
            try {
                if (client.send(HttpRequest.newBuilder(URI.create(url)).build(),
                        HttpResponse.BodyHandlers.discarding()).statusCode() == 200) {
                    return;
                }
            } catch (IOException e) {
                if (System.nanoTime() > deadline) {
                    throw e;
                }
            }
            Thread.sleep(100);
        }
    }
}
