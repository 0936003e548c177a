package org.sdserve.orchestrator.cli;

import io.grpc.ManagedChannel;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.sdserve.common.noise.TorchGenerator;
import org.sdserve.proto.v1.DiffusionGrpc;
import org.sdserve.proto.v1.EvaluateEvent;
import org.sdserve.proto.v1.EvaluateRequest;
import org.sdserve.proto.v1.EvaluationProgress;
import org.sdserve.proto.v1.EvaluationResult;
import org.sdserve.proto.v1.PromptAdherence;

/**
 * {@code sd eval}: the paper's quality measures on the served model's own output, by the Diffusion.Evaluate RPC of
 * the embedded stack (whose VAE stage serves the extractor of --extractor, models/scene-features by default) or of
 * any orchestrator (--target; its VAE stage needs sd.vae.extractor-dir). N images over the demo model's fixed
 * prompt set (every shape x colour, backgrounds and sizes cycling), seeds 0..N-1; FID, KID and precision/recall
 * against the extractor's reference features of real scenes, the Inception Score of its logits, and the
 * prompt-adherence judge's figures (docs/prompt-adherence-judge.md); a table, and JSON with {@code --json}.
 */
final class EvalCommand {
    static final String USAGE = """
                   sd eval [--images N] [--steps N] [--scheduler NAME] [--guidance S] [--target HOST:PORT]
                           [--extractor DIR] [--json FILE]
                                          FID, KID, precision/recall and IS of N images (default 512) over the demo
                                          prompt set, seeds 0..N-1, against the extractor's real scenes
            """;
    private final PrintStream out;
    private final PrintStream err;

    EvalCommand(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    int run(String[] args) {
        String home = System.getProperty("sdserve.home", ".");
        EvaluateRequest.Builder request = EvaluateRequest.newBuilder().setImages(512);
        String target = null;
        Path extractorDir = null;
        Path json = null;
        try {
            for (int i = 1; i < args.length; i++) {
                switch (args[i]) {
                    case "--images" -> request.setImages(Integer.parseInt(args[++i]));
                    case "--steps" -> request.setSteps(Integer.parseInt(args[++i]));
                    case "--scheduler" -> request.setScheduler(args[++i]);
                    case "--guidance" -> request.setGuidanceScale(Float.parseFloat(args[++i]));
                    case "--target" -> target = args[++i];
                    case "--extractor" -> extractorDir = Path.of(args[++i]);
                    case "--json" -> json = Path.of(args[++i]);
                    default -> throw new IllegalArgumentException("unknown option " + args[i]);
                }
            }
            if (request.getImages() < 16 || request.getImages() > SdCli.MAX_EVALUATION_IMAGES) {
                throw new IllegalArgumentException("--images must be in [16, " + SdCli.MAX_EVALUATION_IMAGES
                        + "], got " + request.getImages());
            }
            if (target != null && extractorDir != null) {
                throw new IllegalArgumentException("--extractor is the embedded stack's; a --target's VAE stage "
                        + "serves its own (sd.vae.extractor-dir)");
            }
        } catch (ArrayIndexOutOfBoundsException | IllegalArgumentException e) {
            err.println("sd eval: " + (e instanceof ArrayIndexOutOfBoundsException ? "an option lacks its value"
                    : e.getMessage()));
            err.print(USAGE);
            return 2;
        }
        if (target == null && extractorDir == null) {
            extractorDir = Path.of(home, "models", "scene-features");
        }
        Logger.getLogger("").setLevel(Level.WARNING);
        List<AutoCloseable> resources = new ArrayList<>();
        try {
            ManagedChannel channel = SdCli.connect(target, Path.of(home, "models", "sd-shapes-64").toString(),
                    extractorDir, TorchGenerator.Kernel.AVX2, resources, err);
            Iterator<EvaluateEvent> events = DiffusionGrpc.newBlockingStub(channel)
                    .withDeadlineAfter(2, TimeUnit.HOURS).evaluate(request.build());
            EvaluationResult r = null;
            while (events.hasNext()) {
                EvaluateEvent e = events.next();
                if (e.hasProgress()) {
                    EvaluationProgress p = e.getProgress();
                    if (p.getMeasuring()) {
                        err.printf(Locale.ROOT, "\rsd eval: %d/%d images, %.1f s; measuring          ",
                                p.getImagesDone(), p.getImagesTotal(), p.getElapsedMs() / 1e3);
                    } else {
                        err.printf(Locale.ROOT, "\rsd eval: %d/%d images, %.1f s, about %.0f s left  ",
                                p.getImagesDone(), p.getImagesTotal(), p.getElapsedMs() / 1e3,
                                p.getEstimatedRemainingMs() / 1e3);
                    }
                } else if (e.hasResult()) {
                    r = e.getResult();
                }
            }
            err.println();
            if (r == null) {
                throw new IllegalStateException("the Evaluate stream ended without a result");
            }
            print(r);
            if (json != null) {
                Files.writeString(json, json(r));
            }
            return 0;
        } catch (IOException | RuntimeException e) {
            return SdCli.failed(err, "sd eval", e);
        } finally {
            SdCli.closeAll(resources);
        }
    }

    private void print(EvaluationResult r) {
        EvaluateRequest q = r.getResolved();
        out.printf(Locale.ROOT, "%d images, %d steps of %s, guidance %s, against %d real images (%s)%n", q.getImages(),
                q.getSteps(), q.getScheduler(), q.getGuidanceScale(), r.getReferenceImages(), r.getExtractor());
        out.printf(Locale.ROOT, "FID        %10.4f%n", r.getFid());
        out.printf(Locale.ROOT, "KID        %10.6f%n", r.getKid());
        out.printf(Locale.ROOT, "precision  %10.4f%n", r.getPrecision());
        out.printf(Locale.ROOT, "recall     %10.4f%n", r.getRecall());
        if (r.hasInceptionScore()) {
            out.printf(Locale.ROOT, "IS         %10.4f +- %.4f (10 splits)%n", r.getInceptionScore(),
                    r.getInceptionScoreStd());
        }
        if (r.hasAdherence()) {
            PromptAdherence a = r.getAdherence();
            out.printf(Locale.ROOT, "adherence  colour %.1f%%, background %.1f%%, shape %.1f%%, size %.1f%% "
                    + "(docs/prompt-adherence-judge.md)%n", 100 * a.getColour(), 100 * a.getBackground(),
                    100 * a.getShape(), 100 * a.getSize());
        }
        out.printf(Locale.ROOT, "time       %10.1f s%n", r.getTotalMs() / 1e3);
    }

    /** The result as the quality study reads it (tools/eval/study.py). */
    static String json(EvaluationResult r) {
        EvaluateRequest q = r.getResolved();
        PromptAdherence a = r.getAdherence();
        String adherence = r.hasAdherence() ? String.format(Locale.ROOT, "{\"colour\": %s, \"background\": %s, "
                + "\"shape\": %s, \"size\": %s}", a.getColour(), a.getBackground(), a.getShape(), a.getSize()) : "null";
        return String.format(Locale.ROOT, "{\"images\": %d, \"steps\": %d, \"scheduler\": \"%s\", \"guidance_scale\": "
                + "%s, \"extractor\": \"%s\", \"reference_images\": %d, \"fid\": %s, \"kid\": %s, \"precision\": %s, "
                + "\"recall\": %s, \"inception_score\": %s, \"inception_score_std\": %s, \"adherence\": %s, "
                + "\"seconds\": %.1f}%n", q.getImages(), q.getSteps(), q.getScheduler(), q.getGuidanceScale(),
                r.getExtractor(), r.getReferenceImages(), r.getFid(), r.getKid(), r.getPrecision(), r.getRecall(),
                r.hasInceptionScore() ? r.getInceptionScore() : "null",
                r.hasInceptionScore() ? r.getInceptionScoreStd() : "null", adherence, r.getTotalMs() / 1e3);
    }
}
