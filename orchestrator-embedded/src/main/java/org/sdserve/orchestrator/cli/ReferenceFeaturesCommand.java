package org.sdserve.orchestrator.cli;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.eval.extract.ReferenceFeatures;

/**
 * {@code sd reference-features IMAGES_DIR --extractor DIR}: an extractor's reference set from a folder of real
 * images (every .png, .jpg, .jpeg, .bmp and .gif in it, in name order), written into the extractor's directory.
 */
final class ReferenceFeaturesCommand {
    static final String USAGE = """
                   sd reference-features IMAGES_DIR --extractor DIR [--limit N]
                                          the extractor's reference set: the features of the real images in
                                          IMAGES_DIR (name order, the first N), into DIR/reference_features.npy
            """;
    private static final List<String> IMAGE_TYPES = List.of(".png", ".jpg", ".jpeg", ".bmp", ".gif");
    private final PrintStream out;
    private final PrintStream err;

    ReferenceFeaturesCommand(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    int run(String[] args) {
        Path images = null;
        Path extractor = null;
        int limit = Integer.MAX_VALUE;
        try {
            for (int i = 1; i < args.length; i++) {
                switch (args[i]) {
                    case "--extractor" -> extractor = Path.of(args[++i]);
                    case "--limit" -> limit = Integer.parseInt(args[++i]);
                    default -> {
                        if (args[i].startsWith("-") || images != null) {
                            throw new IllegalArgumentException("unknown option " + args[i]);
                        }
                        images = Path.of(args[i]);
                    }
                }
            }
            if (images == null || extractor == null) {
                throw new IllegalArgumentException("IMAGES_DIR and --extractor DIR are required");
            }
            if (limit < ReferenceFeatures.MIN_IMAGES) {
                throw new IllegalArgumentException("--limit must be at least " + ReferenceFeatures.MIN_IMAGES
                        + ", got " + limit);
            }
            if (!Files.isDirectory(images)) {
                throw new IllegalArgumentException(images + " is not a directory");
            }
        } catch (ArrayIndexOutOfBoundsException | IllegalArgumentException e) {
            err.println("sd reference-features: " + (e instanceof ArrayIndexOutOfBoundsException
                    ? "an option lacks its value" : e.getMessage()));
            err.print(USAGE);
            return 2;
        }
        long t0 = System.nanoTime();
        try (Stream<Path> files = Files.list(images)) {
            List<Path> chosen = files.filter(p -> IMAGE_TYPES.stream().anyMatch(t -> p.getFileName().toString()
                    .toLowerCase(Locale.ROOT).endsWith(t))).sorted().limit(limit).toList();
            int total = chosen.size();
            int n = ReferenceFeatures.write(extractor, chosen, ExecutionOptions.CPU,
                    done -> err.printf(Locale.ROOT, "\rsd reference-features: %d/%d images", done, total));
            err.println();
            out.printf(Locale.ROOT, "%d images embedded in %.1f s: %s%n", n, (System.nanoTime() - t0) / 1e9,
                    extractor.resolve(ReferenceFeatures.FILE));
            return 0;
        } catch (IOException | RuntimeException e) {
            return SdCli.failed(err, "sd reference-features", e);
        }
    }
}
