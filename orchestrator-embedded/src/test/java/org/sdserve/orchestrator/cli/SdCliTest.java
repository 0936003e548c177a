package org.sdserve.orchestrator.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.sdserve.common.grpc.ServiceHost;
import org.sdserve.common.noise.TorchGenerator;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.testing.DemoModel;
import org.sdserve.denoise.batch.BatchSettings;
import org.sdserve.orchestrator.core.EngineSettings;
import org.sdserve.orchestrator.core.JobEngine;
import org.sdserve.orchestrator.core.Limits;
import org.sdserve.orchestrator.embedded.EmbeddedStages;
import org.sdserve.orchestrator.grpc.DiffusionService;
import org.sdserve.orchestrator.grpc.StageClients;

/** The sd commands against an orchestrator on a real TCP port (the embedded stack behind it). */
class SdCliTest {
    private static EmbeddedStages stages;
    private static JobEngine engine;
    private static ServiceHost host;
    private static String target;

    @BeforeAll
    static void start() {
        stages = EmbeddedStages.start(DemoModel.directory(), ExecutionOptions.CPU, TorchGenerator.Kernel.AVX2,
                BatchSettings.DEFAULT, Path.of(System.getProperty("sd.root", "..")).resolve("models/scene-features"),
                64 << 20, StageClients.Timeouts.DEFAULT);
        engine = JobEngine.start(stages.clients(), Limits.DEFAULT, EngineSettings.DEFAULT);
        host = ServiceHost.tcp("127.0.0.1", 0, 64 << 20, List.of(new DiffusionService(engine)));
        host.serving();
        target = host.where().replace("127.0.0.1", "localhost");
    }

    @AfterAll
    static void stop() {
        host.close();
        engine.close();
        stages.close();
    }

    /** Exit status, stdout and stderr of one command. */
    private record Ran(int status, String out, String err) {
    }

    private static synchronized Ran sd(String... args) {
        PrintStream out = System.out;
        PrintStream err = System.err;
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        ByteArrayOutputStream e = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(o, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(e, true, StandardCharsets.UTF_8));
            int status = new SdCli().run(args);
            return new Ran(status, o.toString(StandardCharsets.UTF_8), e.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
    }

    /**
     * sd eval against the running orchestrator (its Evaluate RPC; its VAE stage serves the demo's extractor): 16
     * images, the demo extractor's measures, the JSON beside them; the same seeds give the same figures.
     */
    @Test
    void evalReportsTheQualityMeasuresOfTheServedModel(@TempDir Path dir) throws Exception {
        Path json = dir.resolve("eval.json");
        Ran eval = sd("eval", "--images", "16", "--steps", "6", "--target", target, "--json", json.toString());
        assertEquals(0, eval.status(), eval.err());
        for (String measure : new String[] {"FID", "KID", "precision", "recall", "IS", "adherence"}) {
            assertTrue(eval.out().contains(measure + " "), eval.out());
        }
        String first = Files.readString(json).replaceAll(", \"seconds\": [0-9.]+", "");
        assertTrue(first.contains("\"images\": 16, \"steps\": 6"), first);
        assertEquals(0, sd("eval", "--images", "16", "--steps", "6", "--target", target, "--json", json.toString())
                .status());
        assertEquals(first, Files.readString(json).replaceAll(", \"seconds\": [0-9.]+", ""), "same seeds, same figures");
        Ran bad = sd("eval", "--images", "3");
        assertEquals(2, bad.status());
        assertTrue(bad.err().contains("--images must be in [16, 8192], got 3"), bad.err());
        Ran both = sd("eval", "--target", target, "--extractor", "models/scene-features");
        assertEquals(2, both.status());
        assertTrue(both.err().contains("--extractor is the embedded stack's"), both.err());
    }

    @Test
    void generateThenListWatchAndCancelTheJobByItsId(@TempDir Path dir) throws Exception {
        Path png = dir.resolve("a.png");
        Ran gen = sd("generate", "a red circle on a blue background", "--seed", "7", "--steps", "6", "--target",
                target, "-o", png.toString());
        assertEquals(0, gen.status(), gen.err());
        Matcher m = Pattern.compile("job ([0-9a-f-]{36})").matcher(gen.err());
        assertTrue(m.find(), gen.err());
        String id = m.group(1);

        Ran jobs = sd("jobs", "--target", target);
        assertEquals(0, jobs.status(), jobs.err());
        assertTrue(jobs.out().contains(id + "  JOB_STATE_COMPLETED"), jobs.out());

        Path again = dir.resolve("b.png");
        Ran watch = sd("watch", id, "--target", target, "-o", again.toString());
        assertEquals(0, watch.status(), watch.err());
        assertArrayEquals(Files.readAllBytes(png), Files.readAllBytes(again), "Watch replays the job's image");

        Ran cancel = sd("cancel", id, "--target", target);
        assertEquals(0, cancel.status(), cancel.err());
        assertTrue(cancel.err().contains("was JOB_STATE_COMPLETED"), cancel.err());

        Ran health = sd("health", "--target", target, "--wait", "5");
        assertEquals(0, health.status(), health.err());
    }

    @Test
    void anUnknownJobAndAMissingTargetAreTold() {
        Ran unknown = sd("watch", "00000000-0000-0000-0000-000000000000", "--target", target);
        assertEquals(1, unknown.status());
        assertTrue(unknown.err().contains("NOT_FOUND: no job has id 00000000-0000-0000-0000-000000000000"),
                unknown.err());
        Ran noTarget = sd("jobs");
        assertEquals(2, noTarget.status());
        assertTrue(noTarget.err().contains("jobs needs --target HOST:PORT"), noTarget.err());
        Ran noId = sd("cancel", "--target", target);
        assertEquals(2, noId.status());
        assertTrue(noId.err().contains("cancel needs a job id"), noId.err());
    }
}
