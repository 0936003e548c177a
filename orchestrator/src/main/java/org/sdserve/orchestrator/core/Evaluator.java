package org.sdserve.orchestrator.core;

import com.google.protobuf.ByteString;
import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
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
    /**
     * Most reference values (rows x dimension) a run takes: 30,000 x 2048 fits. They are held as doubles (512 MiB),
     * copied once into the measures' matrix while being read (1 GiB at the peak).
     */
    static final long MAX_REFERENCE_VALUES = 64L << 20;
    /** Precision and recall's k nearest neighbours need more than k vectors on each side. */
    static final int MIN_REFERENCE = PrecisionRecall.DEFAULT_K + 1;
    /** How long a run waits for the queue or the caller's quota when none of its jobs is in flight. */
    private static final long ADMISSION_WAIT_NANOS = TimeUnit.SECONDS.toNanos(30);

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
    private volatile boolean closed;
    /** The last reference set measured against, with its own part of the measures (M^2 of the work). */
    private volatile Reference cached;
    private final ScheduledExecutorService timers = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "evaluation-deadlines");
        t.setDaemon(true);
        return t;
    });

    /**
     * @param maxRuns   runs at once (each holds its images' and the reference set's features)
     * @param maxImages most images per run (the measures hold n feature vectors, and distance blocks of 256 rows)
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
            // 8, or as many as the server's max-pixels lets a job of this size hold
            long w = b.getWidth() != 0 ? Integer.toUnsignedLong(b.getWidth()) : engine.model().getDefaultWidth();
            long h = b.getHeight() != 0 ? Integer.toUnsignedLong(b.getHeight()) : engine.model().getDefaultHeight();
            long fit = w * h > 0 ? engine.limits().maxPixels() / (w * h) : DEFAULT_IMAGES_PER_JOB;
            b.setImagesPerJob((int) Math.max(1, Math.min(Math.min(DEFAULT_IMAGES_PER_JOB, maxPerJob), fit)));
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
        if (closed) {
            throw shuttingDown();
        }
        EvaluateRequest resolved = resolve(request);
        List<GenerateRequest> jobs = jobs(resolved);
        for (int i = 0; i < jobs.size() && i < Math.max(resolved.getPromptsCount(), DemoScenes.COUNT); i++) {
            try {
                engine.resolve(jobs.get(i)); // each distinct prompt once; the rest differ only in seed and count
            } catch (InvalidRequestException e) {
                throw new InvalidRequestException("job " + i + " of the evaluation (" + (resolved.getPromptsCount()
                        == 0 ? "demo prompt " + i : "prompts[" + (i % resolved.getPromptsCount()) + "]") + ", "
                        + jobs.get(i).getNumImages() + " images, from images_per_job): " + e.getMessage());
            }
        }
        ExtractorDescription extractor = engine.stages().describeExtractor(); // FAILED_PRECONDITION without one
        checkReference(extractor);
        if (!slots.tryAcquire()) {
            throw Status.RESOURCE_EXHAUSTED.withDescription(maxRuns + " evaluation(s) running, the most at once "
                    + "(sd.orchestrator.max-evaluations); retry when one ends").asRuntimeException();
        }
        try {
            RunImpl run = new RunImpl(resolved, jobs, extractor, caller, observer, deadline);
            runs.put(run, Boolean.TRUE);
            Thread t = new Thread(run::runInContext, "evaluation");
            t.setDaemon(true);
            t.start();
            return run;
        } catch (RuntimeException | Error e) {
            slots.release();
            throw e;
        }
    }

    private static StatusRuntimeException shuttingDown() {
        return Status.UNAVAILABLE.withDescription("the orchestrator is shutting down; retry on another replica")
                .asRuntimeException();
    }

    /** A reference set the measures can use, as its description tells: FAILED_PRECONDITION otherwise. */
    private static void checkReference(ExtractorDescription extractor) {
        long count = Integer.toUnsignedLong(extractor.getReferenceCount());
        long dimension = Integer.toUnsignedLong(extractor.getDimension());
        if (count < MIN_REFERENCE) {
            throw Status.FAILED_PRECONDITION.withDescription("the feature extractor " + extractor.getName()
                    + (count == 0 ? " ships no reference features to compare with"
                    : " has " + count + " reference features, fewer than the " + MIN_REFERENCE + " the measures need")
                    + " (its config.json's reference_features; sd reference-features makes them)")
                    .asRuntimeException();
        }
        if (dimension < 1 || count * dimension > MAX_REFERENCE_VALUES) {
            throw Status.FAILED_PRECONDITION.withDescription("the feature extractor " + extractor.getName()
                    + "'s reference set of " + count + " x " + dimension + " features is more than an evaluation "
                    + "holds (" + MAX_REFERENCE_VALUES + " values)").asRuntimeException();
        }
    }

    /** A reference set and its own terms of the measures: its manifold's radii, KID's mean kernel within it. */
    private record Reference(String extractor, String digest, Features features, double[] radii, double kidSelf) {
        boolean describes(ExtractorDescription d) {
            return extractor.equals(d.getName()) && !digest.isEmpty() && digest.equals(d.getReferenceDigest());
        }
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

    /** Refuses new runs and stops every running one with UNAVAILABLE (its client may retry on another replica). */
    @Override
    public void close() {
        closed = true;
        for (RunImpl r : runs.keySet()) {
            r.context.cancel(shuttingDown());
        }
        timers.shutdown();
    }

    /** One job's end, as the run's thread takes it: its images and their size. */
    private record Done(int index, List<ByteString> pngs, long pixelsEach, Throwable failure) {
    }

    private final class RunImpl implements Run {
        private final EvaluateRequest request;
        private final List<GenerateRequest> jobs;
        private final ExtractorDescription extractor;
        private final Caller caller;
        private final Observer observer;
        private final Deadline deadline;
        private final Context.CancellableContext context;
        private final LinkedBlockingQueue<Done> done = new LinkedBlockingQueue<>();
        private final Map<Integer, String> inFlight = new ConcurrentHashMap<>(); // job index -> id, once accepted
        private final long t0 = System.nanoTime();

        RunImpl(EvaluateRequest request, List<GenerateRequest> jobs, ExtractorDescription extractor, Caller caller,
                Observer observer, Deadline deadline) {
            this.request = request;
            this.jobs = jobs;
            this.extractor = extractor;
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

        /** Runs, frees its jobs and its slot, then tells its end: a client that heard it may start another run. */
        void runInContext() {
            EvaluationResult result = null;
            Throwable failure = null;
            try {
                result = context.call(this::evaluate);
            } catch (Throwable t) {
                // cancelled or past its deadline: say so, rather than what the stop broke
                failure = context.isCancelled() ? cause() : t;
                LOG.log(System.Logger.Level.INFO, "evaluation of {0} images failed: {1}", request.getImages(),
                        failure.getMessage());
            } finally {
                for (String id : inFlight.values()) {
                    cancelJob(id);
                }
                context.cancel(null);
                runs.remove(this);
                slots.release();
            }
            if (failure == null) {
                observer.result(result);
            } else {
                observer.failed(failure);
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
            Reference reference = reference();
            double[][][] features = new double[jobs.size()][][];
            double[][][] logits = new double[jobs.size()][][];
            boolean judged = request.getPromptsCount() == 0;
            int[] adherence = new int[4]; // images whose judged colour, background, shape, size the prompt named
            int inFlightLimit = caller.maxJobs() > 0 ? Math.min(JOBS_IN_FLIGHT, caller.maxJobs()) : JOBS_IN_FLIGHT;
            int next = 0;
            int running = 0;
            int imagesDone = 0;
            long waitingSince = System.nanoTime();
            while (next < jobs.size() || running > 0) {
                while (next < jobs.size() && running < inFlightLimit) {
                    try {
                        submit(next);
                    } catch (StatusRuntimeException e) {
                        // the queue is full, or the caller's own jobs take its quota: wait for a slot
                        boolean waitMore = running > 0 || System.nanoTime() - waitingSince < ADMISSION_WAIT_NANOS;
                        if (e.getStatus().getCode() != Status.Code.RESOURCE_EXHAUSTED || !waitMore) {
                            throw e;
                        }
                        break;
                    }
                    next++;
                    running++;
                    waitingSince = System.nanoTime();
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
                    if (f.length != part.size() || f[0].length != reference.features().dimension()) {
                        throw Status.FAILED_PRECONDITION.withDescription("the feature extractor gave " + f.length
                                + " x " + (f.length == 0 ? 0 : f[0].length) + " features for " + part.size()
                                + " images; its reference features have " + reference.features().dimension() + " dimensions")
                                .asRuntimeException();
                    }
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
                if (imagesDone == 0) {
                    continue;
                }
                long elapsedMs = (System.nanoTime() - t0) / 1_000_000;
                observer.progress(EvaluationProgress.newBuilder().setImagesDone(imagesDone)
                        .setImagesTotal(request.getImages()).setElapsedMs(elapsedMs)
                        .setEstimatedRemainingMs(elapsedMs * (request.getImages() - imagesDone) / imagesDone).build());
            }
            observer.progress(EvaluationProgress.newBuilder().setImagesDone(imagesDone)
                    .setImagesTotal(request.getImages()).setElapsedMs((System.nanoTime() - t0) / 1_000_000)
                    .setMeasuring(true).build());
            return measure(reference, features, logits, judged ? adherence : null);
        }

        /**
         * The extractor's reference set and its own terms: the cached ones when the extractor still describes them
         * (same name and digest of the features),
         * else read from its stream of chunks and computed (the M^2 part of the measures, once per reference set).
         */
        private Reference reference() {
            Reference c = cached;
            if (c != null && c.describes(extractor)) {
                return c;
            }
            int count = extractor.getReferenceCount();
            int dimension = extractor.getDimension();
            double[][] rows = new double[count][];
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
            Features features = Features.of(rows);
            rows = null; // (the matrix holds them now)
            c = new Reference(extractor.getName(), extractor.getReferenceDigest(), features,
                    PrecisionRecall.radii(features, PrecisionRecall.DEFAULT_K), Kid.selfTerm(features));
            cached = c;
            return c;
        }

        private EvaluationResult measure(Reference ref, double[][][] perJob, double[][][] perJobLogits,
                                         int[] adherence) {
            Features reference = ref.features();
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
            double fid = Fid.distance(reference, generated);
            checkStillWanted();
            double kid = Kid.of(reference, ref.kidSelf(), generated);
            checkStillWanted();
            PrecisionRecall.Result pr = PrecisionRecall.of(reference, ref.radii(), generated,
                    PrecisionRecall.DEFAULT_K);
            // (the prompts are not echoed: up to 1000 of them, the client's own)
            EvaluationResult.Builder b = EvaluationResult.newBuilder().setResolved(request.toBuilder().clearPrompts())
                    .setExtractor(extractor.getName()).setReferenceImages(reference.count()).setFid(fid).setKid(kid)
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

        /** Between the measures: a cancelled run (or one past its deadline) stops here. */
        private void checkStillWanted() {
            if (context.isCancelled()) {
                throw Status.CANCELLED.withDescription("the evaluation was cancelled").asRuntimeException();
            }
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
