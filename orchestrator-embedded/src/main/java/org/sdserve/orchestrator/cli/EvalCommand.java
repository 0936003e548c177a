package org.sdserve.orchestrator.cli;

import io.grpc.ManagedChannel;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.sdserve.common.image.RgbImage;
import org.sdserve.common.noise.TorchGenerator;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.eval.extract.FeatureExtractor;
import org.sdserve.eval.judge.DemoScenes;
import org.sdserve.eval.judge.PromptJudge;
import org.sdserve.eval.metrics.Features;
import org.sdserve.eval.metrics.Fid;
import org.sdserve.eval.metrics.InceptionScore;
import org.sdserve.eval.metrics.Kid;
import org.sdserve.eval.metrics.PrecisionRecall;
import org.sdserve.proto.v1.DiffusionGrpc;
import org.sdserve.proto.v1.GenerateEvent;
import org.sdserve.proto.v1.GenerateRequest;

/**
 * {@code sd eval}: the paper's quality measures on the served model's own output. Generates N images over the demo
 * model's fixed prompt set (scenes.judge_prompts: every shape x colour, backgrounds and sizes cycling) with fixed
 * seeds through the services (embedded here, or any orchestrator), extracts their features with an extractor model
 * (models/scene-features by default), and reports FID, KID and precision/recall against the extractor's reference
 * features of real scenes, the Inception Score of its logits, and the prompt-adherence judge's figures
 * (docs/prompt-adherence-judge.md); a table, and JSON with {@code --json}.
 */
final class EvalCommand {
    static final String USAGE = """
                   sd eval [--images N] [--steps N] [--scheduler NAME] [--guidance S] [--target HOST:PORT]
                           [--extractor DIR] [--json FILE]
                                          FID, KID, precision/recall and IS of N images (default 512) over the demo
                                          prompt set, seeds 0..N-1, against the extractor's real scenes
            """;
    private static final int PER_CALL = 8;
    private final PrintStream out;
    private final PrintStream err;

    EvalCommand(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    int run(String[] args) {
        String home = System.getProperty("sdserve.home", ".");
        int images = 512;
        int steps = 25;
        String scheduler = "ddim";
        float guidance = 7.5f;
        String target = null;
        Path extractorDir = Path.of(home, "models", "scene-features");
        Path json = null;
        try {
            for (int i = 1; i < args.length; i++) {
                switch (args[i]) {
                    case "--images" -> images = Integer.parseInt(args[++i]);
                    case "--steps" -> steps = Integer.parseInt(args[++i]);
                    case "--scheduler" -> scheduler = args[++i];
                    case "--guidance" -> guidance = Float.parseFloat(args[++i]);
                    case "--target" -> target = args[++i];
                    case "--extractor" -> extractorDir = Path.of(args[++i]);
                    case "--json" -> json = Path.of(args[++i]);
                    default -> throw new IllegalArgumentException("unknown option " + args[i]);
                }
            }
            if (images < 16 || images > 100_000) {
                throw new IllegalArgumentException("--images must be in [16, 100000], got " + images);
            }
        } catch (ArrayIndexOutOfBoundsException | IllegalArgumentException e) {
            err.println("sd eval: " + (e instanceof ArrayIndexOutOfBoundsException ? "an option lacks its value"
                    : e.getMessage()));
            err.print(USAGE);
            return 2;
        }
        Logger.getLogger("").setLevel(Level.WARNING);
        List<AutoCloseable> resources = new ArrayList<>();
        long t0 = System.nanoTime();
        try (FeatureExtractor extractor = FeatureExtractor.load(extractorDir, ExecutionOptions.CPU)) {
            Features reference = extractor.reference();
            if (reference == null) {
                throw new IllegalArgumentException(extractorDir + ": the extractor ships no reference_features");
            }
            ManagedChannel channel = SdCli.connect(target, Path.of(home, "models", "sd-shapes-64").toString(),
                    TorchGenerator.Kernel.AVX2, resources, err);
            List<double[]> features = new ArrayList<>();
            List<double[]> logits = new ArrayList<>();
            List<RgbImage> batch = new ArrayList<>();
            int[] adherence = new int[4]; // images whose judged colour, background, shape, size the prompt named
            for (int start = 0; start < images; start += PER_CALL) {
                int n = Math.min(PER_CALL, images - start);
                DemoScenes scene = DemoScenes.of(start / PER_CALL);
                var events = DiffusionGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.MINUTES)
                        .generate(GenerateRequest.newBuilder().setPrompt(scene.prompt()).setSeed(start)
                                .setNumImages(n).setSteps(steps).setScheduler(scheduler).setGuidanceScale(guidance)
                                .build());
                while (events.hasNext()) {
                    GenerateEvent e = events.next();
                    if (e.hasImage()) {
                        RgbImage img = RgbImage.fromPng(e.getImage().getPng().toByteArray(), "image");
                        batch.add(img);
                        PromptJudge.Verdict v = PromptJudge.judge(img);
                        adherence[0] += v.colour().equals(scene.colour()) ? 1 : 0;
                        adherence[1] += v.background().equals(scene.background()) ? 1 : 0;
                        adherence[2] += v.shape().equals(scene.shape()) ? 1 : 0;
                        adherence[3] += v.size().equals(scene.size()) ? 1 : 0;
                    }
                }
                if (batch.size() >= 64 || start + n >= images) {
                    FeatureExtractor.Extracted x = extractor.extract(batch);
                    features.addAll(List.of(x.features()));
                    if (x.logits() != null) {
                        logits.addAll(List.of(x.logits()));
                    }
                    batch.clear();
                }
                err.printf(Locale.ROOT, "\rsd eval: %d/%d images, %.1f s", start + n, images,
                        (System.nanoTime() - t0) / 1e9);
            }
            err.println();
            double generateSeconds = (System.nanoTime() - t0) / 1e9;
            Features generated = Features.of(features.toArray(double[][]::new));
            double fid = Fid.distance(reference, generated);
            double kid = Kid.of(reference, generated);
            PrecisionRecall.Result pr = PrecisionRecall.of(reference, generated, PrecisionRecall.DEFAULT_K);
            InceptionScore.Score is = logits.isEmpty() ? null
                    : InceptionScore.ofLogits(logits.toArray(double[][]::new), 10);
            double seconds = (System.nanoTime() - t0) / 1e9;
            out.printf(Locale.ROOT, "%d images, %d steps of %s, guidance %s, against %d real scenes (%s)%n", images,
                    steps, scheduler, guidance, reference.count(), extractorDir.getFileName());
            out.printf(Locale.ROOT, "FID        %10.4f%n", fid);
            out.printf(Locale.ROOT, "KID        %10.6f%n", kid);
            out.printf(Locale.ROOT, "precision  %10.4f%n", pr.precision());
            out.printf(Locale.ROOT, "recall     %10.4f%n", pr.recall());
            if (is != null) {
                out.printf(Locale.ROOT, "IS         %10.4f +- %.4f (10 splits)%n", is.mean(), is.std());
            }
            out.printf(Locale.ROOT, "adherence  colour %.1f%%, background %.1f%%, shape %.1f%%, size %.1f%% "
                    + "(docs/prompt-adherence-judge.md)%n", 100.0 * adherence[0] / images, 100.0 * adherence[1] / images,
                    100.0 * adherence[2] / images, 100.0 * adherence[3] / images);
            out.printf(Locale.ROOT, "time       %10.1f s (%.1f s generating and extracting)%n", seconds,
                    generateSeconds);
            if (json != null) {
                Files.writeString(json, String.format(Locale.ROOT, "{\"images\": %d, \"steps\": %d, \"scheduler\": "
                        + "\"%s\", \"guidance_scale\": %s, \"fid\": %s, \"kid\": %s, \"precision\": %s, \"recall\": %s, "
                        + "\"inception_score\": %s, \"inception_score_std\": %s, \"adherence\": {\"colour\": %s, "
                        + "\"background\": %s, \"shape\": %s, \"size\": %s}, \"seconds\": %.1f}%n", images, steps,
                        scheduler, guidance, fid, kid, pr.precision(), pr.recall(), is == null ? "null" : is.mean(),
                        is == null ? "null" : is.std(), (double) adherence[0] / images, (double) adherence[1] / images,
                        (double) adherence[2] / images, (double) adherence[3] / images, seconds));
            }
            return 0;
        } catch (IOException | RuntimeException e) {
            return SdCli.failed(err, "sd eval", e);
        } finally {
            SdCli.closeAll(resources);
        }
    }
}
