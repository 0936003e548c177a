package org.sdserve.orchestrator.core;

import com.google.protobuf.ByteString;
import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.Status;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.common.image.RgbImage;
import org.sdserve.common.tensor.FloatTensor;
import org.sdserve.common.tensor.TensorCodec;
import org.sdserve.eval.judge.DemoScenes;
import org.sdserve.eval.judge.PromptJudge;
import org.sdserve.eval.metrics.Features;
import org.sdserve.eval.metrics.Fid;
import org.sdserve.eval.metrics.InceptionScore;
import org.sdserve.eval.metrics.Kid;
import org.sdserve.eval.metrics.PrecisionRecall;
import org.sdserve.proto.v1.EvaluateRequest;
import org.sdserve.proto.v1.EvaluationProgress;
import org.sdserve.proto.v1.EvaluationResult;
import org.sdserve.proto.v1.ExtractRequest;
import org.sdserve.proto.v1.ExtractResponse;
import org.sdserve.proto.v1.ExtractorDescription;
import org.sdserve.proto.v1.GenerateRequest;
import org.sdserve.proto.v1.Priority;
import org.sdserve.proto.v1.PromptAdherence;
import org.sdserve.proto.v1.ReferenceFeaturesChunk;

/**
 * Evaluation runs (Diffusion.Evaluate): the paper's quality measures of the served model's own output. A run
 * generates its images as jobs of the {@link JobEngine} (a few in flight, so that the denoiser batches their steps),
 * has the VAE stage's feature extractor embed each job's images as they come, and at the end compares the feature
 * set with the extractor's reference features of real images: FID, KID, precision and recall (k = 3), the Inception
 * Score of the logits (10 splits), and on the demo prompt set the prompt-adherence judge's shares. The measures are
 * of the evaluation module (each tested against its reference implementation there); images are not kept, only
 * their features, in job order, so that a run's figures do not depend on which job finished first.
 */
public final class Evaluator implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(Evaluator.class.getName());
    public static final int MIN_IMAGES = 16;
    public static final int DEFAULT_IMAGES = 512;
    public static final int DEFAULT_IMAGES_PER_JOB = 8;
    public static final int MAX_PROMPTS = 1000;
    /** Jobs of one run waiting or running at once (fewer when the caller's quota is smaller). */
    static final int JOBS_IN_FLIGHT = 4;
    /** Most images, and pixels, per Extract call (the Features service's bounds). */
    static final int EXTRACT_BATCH = 64;
    static final long EXTRACT_PIXELS = 64L * 512 * 512;
    private static final int IS_SPLITS = 10;
    /** Most reference values (rows x dimension) a run holds, as doubles: 512 MiB (30,000 x 2048 fits). */
    static final long MAX_REFERENCE_VALUES = 64L << 20;

    /** What a run tells its caller: progress as images are done, then its result or why it failed. */
    public interface Observer {
        void progress(EvaluationProgress progress);

        void result(EvaluationResult result);

        void failed(Throwable failure);
    }

    /** A run in progress; {@link #cancel()} stops it and cancels its jobs. */
    public interface Run {
        void cancel();
    }

    private final JobEngine engine;
    private final Semaphore slots;
    private final int maxRuns;
    private final int maxImages;
    private final Map<RunImpl, Boolean> runs = new ConcurrentHashMap<>();
    private final ScheduledExecutorService timers = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "evaluation-deadlines");
        t.setDaemon(true);
        return t;
    });

    /**
     * @param maxRuns   runs at once (each holds its images' features, and the measures' n x n matrices at the end)
     * @param maxImages most images per run: the measures' memory grows as its square (8 * n^2 bytes per matrix)
     */
    public Evaluator(JobEngine engine, int maxRuns, int maxImages) {
        if (maxRuns < 1 || maxImages < MIN_IMAGES) {
            throw new IllegalArgumentException("an evaluator needs max-evaluations >= 1 and max-evaluation-images >= "
                    + MIN_IMAGES + ", got " + maxRuns + " and " + maxImages);
        }
        this.engine = engine;
        this.maxRuns = maxRuns;
        this.slots = new Semaphore(maxRuns);
        this.maxImages = maxImages;
    }

    /** The request with its defaults filled in, or INVALID_ARGUMENT saying which field is wrong. */
    public EvaluateRequest resolve(EvaluateRequest request) {
        EvaluateRequest.Builder b = request.toBuilder();
        if (b.getImages() == 0) {
            b.setImages(Math.min(DEFAULT_IMAGES, maxImages));
        }
        long images = Integer.toUnsignedLong(b.getImages());
        InvalidRequestException.require(images >= MIN_IMAGES && images <= maxImages,
                "images must be in [%d, %d] (sd.orchestrator.max-evaluation-images), got %d", MIN_IMAGES, maxImages,
                images);
        int maxPerJob = engine.limits().maxImages();
        if (b.getImagesPerJob() == 0) {
            b.setImagesPerJob(Math.min(DEFAULT_IMAGES_PER_JOB, maxPerJob));
        }
        long perJob = Integer.toUnsignedLong(b.getImagesPerJob());
        InvalidRequestException.require(perJob >= 1 && perJob <= maxPerJob,
                "images_per_job must be in [1, %d] (the server's num_images limit), got %d", maxPerJob, perJob);
        InvalidRequestException.require(b.getPromptsCount() <= MAX_PROMPTS,
                "prompts must hold at most %d prompts, got %d", MAX_PROMPTS, b.getPromptsCount());
        if (b.getSteps() == 0) {
            b.setSteps(25);
        }
        if (b.getScheduler().isEmpty()) {
            b.setScheduler("ddim");
        }
        if (!b.hasGuidanceScale()) {
            b.setGuidanceScale(7.5f);
        }
        return b.build();
    }

    /**
     * Checks the request, takes a run slot (RESOURCE_EXHAUSTED when every one is taken), and starts the run on its
     * own thread; {@code observer} hears the rest. Every job's request is validated here, before any compute.
     *
     * @param deadline the caller's, for the run's jobs and stage calls; null = none
     */
    public Run start(EvaluateRequest request, Deadline deadline, Caller caller, Observer observer) {
        EvaluateRequest resolved = resolve(request);
        List<GenerateRequest> jobs = jobs(resolved);
        for (int i = 0; i < jobs.size() && i < Math.max(resolved.getPromptsCount(), DemoScenes.COUNT); i++) {
            engine.resolve(jobs.get(i)); // each distinct prompt once; the rest differ only in seed and count
        }
        if (!slots.tryAcquire()) {
            throw Status.RESOURCE_EXHAUSTED.withDescription(maxRuns + " evaluation(s) running, the most at once "
                    + "(sd.orchestrator.max-evaluations); retry when one ends").asRuntimeException();
        }
        RunImpl run = new RunImpl(resolved, jobs, caller, observer, deadline);
        runs.put(run, Boolean.TRUE);
        Thread t = new Thread(run::runInContext, "evaluation");
        t.setDaemon(true);
        t.start();
        return run;
    }

    /** The run's jobs: job j has images_per_job images (the last the rest), seeds from seed + j * images_per_job. */
    static List<GenerateRequest> jobs(EvaluateRequest r) {
        List<GenerateRequest> jobs = new ArrayList<>();
        int perJob = r.getImagesPerJob();
        for (int start = 0, j = 0; start < r.getImages(); start += perJob, j++) {
            String prompt = r.getPromptsCount() == 0 ? DemoScenes.of(j).prompt()
                    : r.getPrompts(j % r.getPromptsCount());
            jobs.add(GenerateRequest.newBuilder().setPrompt(prompt).setSeed(r.getSeed() + start)
                    .setNumImages(Math.min(perJob, r.getImages() - start)).setSteps(r.getSteps())
                    .setScheduler(r.getScheduler()).setGuidanceScale(r.getGuidanceScale()).setWidth(r.getWidth())
                    .setHeight(r.getHeight()).setPriority(Priority.PRIORITY_BATCH).build());
        }
        return jobs;
    }

    /** Cancels every run. */
    @Override
    public void close() {
        for (RunImpl r : runs.keySet()) {
            r.cancel();
        }
        timers.shutdown();
    }

    /** One job's end, as the run's thread takes it: its images and their size. */
    private record Done(int index, List<ByteString> pngs, long pixelsEach, Throwable failure) {
    }

    private final class RunImpl implements Run {
        private final EvaluateRequest request;
        private final List<GenerateRequest> jobs;
        private final Caller caller;
        private final Observer observer;
        private final Deadline deadline;
        private final Context.CancellableContext context;
        private final LinkedBlockingQueue<Done> done = new LinkedBlockingQueue<>();
        private final Map<Integer, String> inFlight = new ConcurrentHashMap<>(); // job index -> id, once accepted
        private final long t0 = System.nanoTime();

        RunImpl(EvaluateRequest request, List<GenerateRequest> jobs, Caller caller, Observer observer,
                Deadline deadline) {
            this.request = request;
            this.jobs = jobs;
            this.caller = caller;
            this.observer = observer;
            this.deadline = deadline;
            this.context = deadline == null ? Context.ROOT.withCancellation()
                    : Context.ROOT.withDeadline(deadline, timers);
        }

        @Override
        public void cancel() {
            context.cancel(Status.CANCELLED.withDescription("the evaluation was cancelled").asRuntimeException());
        }

        void runInContext() {
            try {
                EvaluationResult result = context.call(this::evaluate);
                observer.result(result);
            } catch (Throwable t) {
                // cancelled or past its deadline: say so, rather than what the stop broke
                Throwable failure = context.isCancelled() ? cause() : t;
                LOG.log(System.Logger.Level.INFO, "evaluation of {0} images failed: {1}", request.getImages(),
                        failure.getMessage());
                observer.failed(failure);
            } finally {
                for (String id : inFlight.values()) {
                    cancelJob(id);
                }
                context.cancel(null);
                runs.remove(this);
                slots.release();
            }
        }

        private Throwable cause() {
            Throwable c = context.cancellationCause();
            if (c == null || c instanceof TimeoutException) {
                return Status.DEADLINE_EXCEEDED.withDescription("the evaluation's deadline passed")
                        .asRuntimeException();
            }
            return c;
        }

        private EvaluationResult evaluate() throws InterruptedException {
            ExtractorDescription extractor = engine.stages().describeExtractor();
            Features reference = reference(extractor);
            double[][][] features = new double[jobs.size()][][];
            double[][][] logits = new double[jobs.size()][][];
            boolean judged = request.getPromptsCount() == 0;
            int[] adherence = new int[4]; // images whose judged colour, background, shape, size the prompt named
            int inFlightLimit = caller.maxJobs() > 0 ? Math.min(JOBS_IN_FLIGHT, caller.maxJobs()) : JOBS_IN_FLIGHT;
            int next = 0;
            int running = 0;
            int imagesDone = 0;
            while (next < jobs.size() || running > 0) {
                while (next < jobs.size() && running < inFlightLimit) {
                    submit(next++);
                    running++;
                }
                Done d = done.poll(200, TimeUnit.MILLISECONDS);
                if (context.isCancelled()) {
                    throw Status.CANCELLED.withDescription("the evaluation was cancelled").asRuntimeException();
                }
                if (d == null) {
                    continue;
                }
                running--;
                inFlight.remove(d.index());
                if (d.failure() != null) {
                    throw d.failure() instanceof RuntimeException e ? e : new IllegalStateException(d.failure());
                }
                features[d.index()] = new double[d.pngs().size()][];
                logits[d.index()] = new double[d.pngs().size()][];
                int perCall = (int) Math.max(1, Math.min(EXTRACT_BATCH, EXTRACT_PIXELS / Math.max(1, d.pixelsEach())));
                for (int from = 0; from < d.pngs().size(); from += perCall) {
                    List<ByteString> part = d.pngs().subList(from, Math.min(d.pngs().size(), from + perCall));
                    ExtractResponse x = engine.stages().extractFeatures(ExtractRequest.newBuilder().addAllPng(part)
                            .build());
                    double[][] f = TensorCodec.decode(x.getFeatures(), "features").rows();
                    double[][] l = x.hasLogits() ? TensorCodec.decode(x.getLogits(), "logits").rows() : null;
                    for (int i = 0; i < part.size(); i++) {
                        features[d.index()][from + i] = f[i];
                        logits[d.index()][from + i] = l == null ? null : l[i];
                    }
                }
                if (judged) {
                    DemoScenes scene = DemoScenes.of(d.index());
                    for (ByteString png : d.pngs()) {
                        PromptJudge.Verdict v = PromptJudge.judge(RgbImage.fromPng(png.toByteArray(), "image"));
                        adherence[0] += v.colour().equals(scene.colour()) ? 1 : 0;
                        adherence[1] += v.background().equals(scene.background()) ? 1 : 0;
                        adherence[2] += v.shape().equals(scene.shape()) ? 1 : 0;
                        adherence[3] += v.size().equals(scene.size()) ? 1 : 0;
                    }
                }
                imagesDone += d.pngs().size();
                long elapsedMs = (System.nanoTime() - t0) / 1_000_000;
                observer.progress(EvaluationProgress.newBuilder().setImagesDone(imagesDone)
                        .setImagesTotal(request.getImages()).setElapsedMs(elapsedMs)
                        .setEstimatedRemainingMs(elapsedMs * (request.getImages() - imagesDone) / imagesDone).build());
            }
            observer.progress(EvaluationProgress.newBuilder().setImagesDone(imagesDone)
                    .setImagesTotal(request.getImages()).setElapsedMs((System.nanoTime() - t0) / 1_000_000)
                    .setMeasuring(true).build());
            return measure(reference, extractor, features, logits, judged ? adherence : null);
        }

        /** The extractor's reference set, as its stream of chunks gives it, checked against its description. */
        private Features reference(ExtractorDescription extractor) {
            long count = Integer.toUnsignedLong(extractor.getReferenceCount());
            long dimension = Integer.toUnsignedLong(extractor.getDimension());
            if (count < 2) {
                throw Status.FAILED_PRECONDITION.withDescription("the feature extractor " + extractor.getName()
                        + " ships no reference features to compare with (its config.json's reference_features; "
                        + "sd reference-features makes them)").asRuntimeException();
            }
            if (dimension < 1 || count * dimension > MAX_REFERENCE_VALUES) {
                throw Status.FAILED_PRECONDITION.withDescription("the feature extractor " + extractor.getName()
                        + "'s reference set of " + count + " x " + dimension + " features is more than an evaluation "
                        + "holds (" + MAX_REFERENCE_VALUES + " values)").asRuntimeException();
            }
            double[][] rows = new double[(int) count][];
            int at = 0;
            for (Iterator<ReferenceFeaturesChunk> it = engine.stages().referenceFeatures(); it.hasNext(); ) {
                FloatTensor chunk = TensorCodec.decode(it.next().getFeatures(), "reference features");
                if (chunk.rank() != 2 || chunk.dim(1) != dimension || at + chunk.dim(0) > count) {
                    throw Status.FAILED_PRECONDITION.withDescription("the feature extractor's reference features "
                            + "do not match its description (" + count + " x " + dimension + ")").asRuntimeException();
                }
                for (double[] row : chunk.rows()) {
                    rows[at++] = row;
                }
            }
            if (at != count) {
                throw Status.FAILED_PRECONDITION.withDescription("the feature extractor sent " + at + " of its "
                        + count + " reference features").asRuntimeException();
            }
            return Features.of(rows);
        }

        private EvaluationResult measure(Features reference, ExtractorDescription extractor, double[][][] perJob,
                                         double[][][] perJobLogits, int[] adherence) {
            List<double[]> f = new ArrayList<>();
            List<double[]> l = new ArrayList<>();
            for (int j = 0; j < perJob.length; j++) {
                for (int i = 0; i < perJob[j].length; i++) {
                    f.add(perJob[j][i]);
                    if (perJobLogits[j][i] != null) {
                        l.add(perJobLogits[j][i]);
                    }
                }
            }
            Features generated = Features.of(f.toArray(double[][]::new));
            if (generated.dimension() != reference.dimension()) {
                throw Status.FAILED_PRECONDITION.withDescription("the extractor's features have "
                        + generated.dimension() + " dimensions but its reference features " + reference.dimension())
                        .asRuntimeException();
            }
            PrecisionRecall.Result pr = PrecisionRecall.of(reference, generated, PrecisionRecall.DEFAULT_K);
            EvaluationResult.Builder b = EvaluationResult.newBuilder().setResolved(request)
                    .setExtractor(extractor.getName()).setReferenceImages(reference.count())
                    .setFid(Fid.distance(reference, generated)).setKid(Kid.of(reference, generated))
                    .setPrecision(pr.precision()).setRecall(pr.recall());
            if (l.size() == f.size()) {
                InceptionScore.Score is = InceptionScore.ofLogits(l.toArray(double[][]::new), IS_SPLITS);
                b.setInceptionScore(is.mean()).setInceptionScoreStd(is.std());
            }
            if (adherence != null) {
                double n = f.size();
                b.setAdherence(PromptAdherence.newBuilder().setColour(adherence[0] / n)
                        .setBackground(adherence[1] / n).setShape(adherence[2] / n).setSize(adherence[3] / n));
            }
            return b.setTotalMs((System.nanoTime() - t0) / 1_000_000).build();
        }

        private void submit(int index) {
            List<ByteString> pngs = new ArrayList<>();
            long[] pixelsEach = {0};
            engine.submit(jobs.get(index), deadline, new JobSubscriber() {
                @Override
                public boolean ready() {
                    return true; // the run's thread takes every image; at most one job's worth waits
                }

                @Override
                public void event(long seq, JobEvent event) {
                    if (event instanceof JobEvent.Accepted a) {
                        inFlight.put(index, a.jobId());
                    } else if (event instanceof JobEvent.Image i) {
                        pngs.add(i.png());
                        pixelsEach[0] = (long) i.width() * i.height(); // a job's images share their size
                    }
                }

                @Override
                public void end(Throwable failure) {
                    done.add(new Done(index, pngs, pixelsEach[0], failure));
                }
            }, caller);
        }

        private void cancelJob(String id) {
            try {
                engine.cancel(id, caller);
            } catch (RuntimeException e) {
                // already gone from the engine: nothing to stop
            }
        }
    }
}
