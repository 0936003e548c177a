package org.sdserve.orchestrator.cli;

import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.sdserve.common.grpc.ServiceHost;
import org.sdserve.common.model.ModelDirectory;
import org.sdserve.common.noise.TorchGenerator;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.denoise.batch.BatchSettings;
import org.sdserve.orchestrator.core.EngineSettings;
import org.sdserve.orchestrator.core.Evaluator;
import org.sdserve.orchestrator.core.JobEngine;
import org.sdserve.orchestrator.core.Limits;
import org.sdserve.orchestrator.embedded.EmbeddedStages;
import org.sdserve.orchestrator.grpc.DiffusionService;
import org.sdserve.orchestrator.grpc.StageClients;
import org.sdserve.proto.v1.CancelRequest;
import org.sdserve.proto.v1.DiffusionGrpc;
import org.sdserve.proto.v1.GenerateEvent;
import org.sdserve.proto.v1.GenerateRequest;
import org.sdserve.proto.v1.Progress;

/**
 * {@code sd generate "a red circle on a blue background" -o out.png}: calls an orchestrator at --target, or,
 * without one, starts the embedded stack (all stages in this process, over in-process gRPC). Shows a progress
 * bar on stderr, writes the PNG(s), exits non-zero with the server's status on failure.
 */
public final class SdCli {
    private static final int MAX_MESSAGE = 64 << 20;
    private final PrintStream err = System.err;

    public static void main(String[] args) {
        System.exit(new SdCli().run(args));
    }

    /** A failed command's message (a gRPC status as CODE: description) after the progress line; exit status 1. */
    static int failed(PrintStream err, String command, Exception e) {
        err.println();
        if (e instanceof StatusRuntimeException s) {
            err.println(command + ": " + s.getStatus().getCode() + ": " + s.getStatus().getDescription());
        } else {
            err.println(command + ": " + e.getMessage());
        }
        return 1;
    }

    /** Closes what a command started, the last first. */
    static void closeAll(List<AutoCloseable> resources) {
        for (int i = resources.size() - 1; i >= 0; i--) {
            try {
                resources.get(i).close();
            } catch (Exception ignored) {
                // exiting anyway
            }
        }
    }

    /**
     * A channel to the orchestrator at {@code target}, or, without one, to the embedded stack started here on
     * {@code modelDir}; what it starts goes into {@code resources} (closed in reverse order by the caller).
     */
    static ManagedChannel connect(String target, String modelDir, TorchGenerator.Kernel kernel,
                                  List<AutoCloseable> resources, PrintStream err) {
        return connect(target, modelDir, null, kernel, resources, err);
    }

    /**
     * The same; the embedded stack's VAE stage also serves the feature extractor in {@code extractorDir} (null =
     * none), for Evaluate.
     */
    static ManagedChannel connect(String target, String modelDir, Path extractorDir, TorchGenerator.Kernel kernel,
                                  List<AutoCloseable> resources, PrintStream err) {
        ManagedChannel channel;
        if (target != null) {
            channel = NettyChannelBuilder.forTarget(target).usePlaintext().maxInboundMessageSize(MAX_MESSAGE).build();
        } else {
            err.println("sd: starting the embedded services on " + modelDir);
            EmbeddedStages stages = EmbeddedStages.start(ModelDirectory.open(Path.of(modelDir)),
                    ExecutionOptions.CPU, kernel, BatchSettings.DEFAULT, extractorDir, MAX_MESSAGE,
                    StageClients.Timeouts.DEFAULT);
            resources.add(stages);
            JobEngine engine = JobEngine.start(stages.clients(), Limits.DEFAULT, EngineSettings.DEFAULT);
            resources.add(engine);
            Evaluator evaluator = new Evaluator(engine, 1, MAX_EVALUATION_IMAGES);
            resources.add(evaluator);
            String name = "orchestrator-" + UUID.randomUUID();
            resources.add(ServiceHost.inProcess(name, MAX_MESSAGE, List.of(new DiffusionService(engine, evaluator))));
            channel = InProcessChannelBuilder.forName(name).maxInboundMessageSize(MAX_MESSAGE).build();
        }
        resources.add(channel::shutdownNow);
        return channel;
    }

    /** Most images of an evaluation on the embedded stack (the measures hold their features and 256-row blocks). */
    static final int MAX_EVALUATION_IMAGES = 8192;

    private static com.google.protobuf.ByteString readFile(String path) {
        try {
            return com.google.protobuf.ByteString.copyFrom(java.nio.file.Files.readAllBytes(Path.of(path)));
        } catch (java.io.IOException e) {
            throw new IllegalArgumentException("cannot read " + path + ": " + e.getMessage());
        }
    }

    private static String usage() {
        return """
                usage: sd generate PROMPT [options]
                  -o, --output FILE       PNG to write (default out.png; with several images out-0.png, out-1.png, ...)
                  --negative TEXT         negative prompt
                  --steps N               denoising steps (default 25)
                  --guidance S            classifier-free guidance scale (default 7.5)
                  --scheduler NAME        ddim, euler, euler_karras, euler_a, dpmpp_2m, dpmpp_2m_karras, ddpm,
                                          pndm, lms, heun, unipc, lcm, dpm2, dpm2_a, tcd, deis, dpmpp_2m_sde,
                                          dpmpp_2m_sde_karras, dpm_singlestep, dpm_singlestep_karras,
                                          euler_a_karras (default ddim)
                  --seed N                seed (default: random, printed)
                  --width W --height H    image size (default: the model's)
                  --num-images N          images (default 1)
                  --init-image FILE       image-to-image: start from this image (PNG; width and height default to its size)
                  --strength S            with --init-image: the share of the schedule that runs, in (0, 1] (default 0.8;
                                          1 with --mask)
                  --mask FILE             with --init-image: inpainting; white = repaint, black = keep (PNG)
                  --target HOST:PORT      a running orchestrator (default: start the embedded stack here)
                  --model-dir DIR         model for the embedded stack (default models/sd-shapes-64)
                  --timeout SECONDS       deadline of the call (default 600)
                  --noise-kernel K        embedded stack: torch CPU kernel the seeded noise reproduces, avx2 (default) or default
                  --verbose               log the services' messages
                """;
    }

    int run(String[] args) {
        boolean help = java.util.Arrays.stream(args).anyMatch(a -> a.equals("--help") || a.equals("-h"));
        if (args.length >= 1 && JobCommands.NAMES.contains(args[0]) && !help) {
            return new JobCommands(this, err).run(args);
        }
        if (args.length >= 1 && args[0].equals("eval") && !help) {
            return new EvalCommand(System.out, err).run(args);
        }
        if (args.length >= 1 && args[0].equals("reference-features") && !help) {
            return new ReferenceFeaturesCommand(System.out, err).run(args);
        }
        if (help || args.length < 2 || !args[0].equals("generate")) {
            err.print(usage());
            err.print(JobCommands.USAGE);
            err.print(EvalCommand.USAGE);
            err.print(ReferenceFeaturesCommand.USAGE);
            return help ? 0 : 2;
        }
        GenerateRequest.Builder req = GenerateRequest.newBuilder().setPrompt(args[1]);
        String output = "out.png";
        String target = null;
        String home = System.getProperty("sdserve.home", ".");
        String modelDir = Path.of(home, "models", "sd-shapes-64").toString();
        long timeout = 600;
        boolean verbose = false;
        TorchGenerator.Kernel kernel = TorchGenerator.Kernel.AVX2;
        try {
            for (int i = 2; i < args.length; i++) {
                String a = args[i];
                switch (a) {
                    case "-o", "--output" -> output = args[++i];
                    case "--negative" -> req.setNegativePrompt(args[++i]);
                    case "--steps" -> req.setSteps(Integer.parseInt(args[++i]));
                    case "--guidance" -> req.setGuidanceScale(Float.parseFloat(args[++i]));
                    case "--scheduler" -> req.setScheduler(args[++i]);
                    case "--seed" -> req.setSeed(Long.parseUnsignedLong(args[++i]));
                    case "--width" -> req.setWidth(Integer.parseInt(args[++i]));
                    case "--height" -> req.setHeight(Integer.parseInt(args[++i]));
                    case "--num-images" -> req.setNumImages(Integer.parseInt(args[++i]));
                    case "--init-image" -> req.setInitImage(readFile(args[++i]));
                    case "--strength" -> req.setStrength(Float.parseFloat(args[++i]));
                    case "--mask" -> req.setMaskImage(readFile(args[++i]));
                    case "--target" -> target = args[++i];
                    case "--model-dir" -> modelDir = args[++i];
                    case "--timeout" -> timeout = Long.parseLong(args[++i]);
                    case "--verbose" -> verbose = true;
                    case "--noise-kernel" -> kernel = TorchGenerator.Kernel.valueOf(args[++i].toUpperCase(Locale.ROOT));
                    default -> throw new IllegalArgumentException("unknown option " + a);
                }
            }
        } catch (ArrayIndexOutOfBoundsException | IllegalArgumentException e) {
            err.println("sd: " + (e instanceof ArrayIndexOutOfBoundsException ? "an option lacks its value"
                    : e.getMessage()));
            err.print(usage());
            return 2;
        }
        if (!verbose) {
            Logger.getLogger("").setLevel(Level.WARNING);
        }
        List<AutoCloseable> resources = new ArrayList<>();
        try {
            ManagedChannel channel = connect(target, modelDir, kernel, resources, err);
            Thread onInterrupt = new Thread(() -> cancelUnfinished(channel), "sd-cancel");
            Runtime.getRuntime().addShutdownHook(onInterrupt);
            try {
                return generate(DiffusionGrpc.newBlockingStub(channel).withDeadlineAfter(timeout, TimeUnit.SECONDS),
                        req.build(), output);
            } finally {
                jobId = null; // ended: nothing to cancel
                removeHook(onInterrupt);
            }
        } catch (IOException | RuntimeException e) {
            return SdCli.failed(err, "sd", e);
        } finally {
            SdCli.closeAll(resources);
        }
    }

    /** The job in progress, until its stream ends. */
    private volatile String jobId;

    /**
     * Ctrl-C while a job runs: the server would keep it for its detach grace (so that a dropped client can
     * re-attach); a user who interrupts wants it stopped, so the CLI cancels it by id.
     */
    private void cancelUnfinished(ManagedChannel channel) {
        String id = jobId;
        if (id == null) {
            return;
        }
        try {
            DiffusionGrpc.newBlockingStub(channel).withDeadlineAfter(2, TimeUnit.SECONDS)
                    .cancel(CancelRequest.newBuilder().setJobId(id).build());
            err.println();
            err.println("sd: cancelled job " + id);
        } catch (StatusRuntimeException e) {
            err.println();
            err.println("sd: could not cancel job " + id + ": " + e.getStatus().getCode());
        }
    }

    private static void removeHook(Thread hook) {
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException shuttingDown) {
            // the hook runs or ran
        }
    }

    private int generate(DiffusionGrpc.DiffusionBlockingStub stub, GenerateRequest request, String output)
            throws IOException {
        return follow(stub.generate(request), output);
    }

    /** Shows a job's events (progress bar on stderr) and writes its images; also what {@code sd watch} does. */
    int follow(Iterator<GenerateEvent> events, String output) throws IOException {
        int images = 1;
        List<Path> written = new ArrayList<>();
        while (events.hasNext()) {
            GenerateEvent e = events.next();
            switch (e.getEventCase()) {
                case ACCEPTED -> {
                    jobId = e.getAccepted().getJobId();
                    GenerateRequest r = e.getAccepted().getResolved();
                    images = r.getNumImages();
                    err.printf(Locale.ROOT, "sd: job %s: %dx%d, %d steps of %s, guidance %.1f, seed %s%n",
                            e.getAccepted().getJobId(), r.getWidth(), r.getHeight(), r.getSteps(), r.getScheduler(),
                            r.getGuidanceScale(), Long.toUnsignedString(r.getSeed()));
                }
                case QUEUED -> err.printf(Locale.ROOT, "\rsd: queued, position %d of %d waiting", e.getQueued()
                        .getPosition(), e.getQueued().getQueueDepth());
                case PROGRESS -> bar(e.getProgress());
                case IMAGE -> {
                    Path p = Path.of(images == 1 ? output : numbered(output, e.getImage().getIndex()));
                    Files.write(p, e.getImage().getPng().toByteArray());
                    written.add(p);
                }
                case COMPLETED -> {
                    err.println();
                    err.printf(Locale.ROOT, "sd: done in %d ms %s; wrote %s%n", e.getCompleted().getTotalMs(),
                            e.getCompleted().getStageMsMap(), written);
                }
                default -> {
                }
            }
        }
        return 0;
    }

    private void bar(Progress p) {
        String stage = switch (p.getStage()) {
            case STAGE_TEXT_ENCODING -> "encoding prompt";
            case STAGE_IMAGE_ENCODING -> "encoding image";
            case STAGE_DENOISING -> "denoising";
            case STAGE_DECODING -> "decoding";
            default -> "waiting";
        };
        int width = 30;
        int filled = p.getTotalSteps() == 0 ? 0 : width * p.getStep() / p.getTotalSteps();
        err.printf(Locale.ROOT, "\r[%s%s] %-15s %3d/%-3d %6.1fs", "#".repeat(filled), ".".repeat(width - filled),
                stage, p.getStep(), p.getTotalSteps(), p.getElapsedMs() / 1000.0);
    }

    private static String numbered(String output, int index) {
        int dot = output.lastIndexOf('.');
        return dot < 0 ? output + "-" + index : output.substring(0, dot) + "-" + index + output.substring(dot);
    }
}
