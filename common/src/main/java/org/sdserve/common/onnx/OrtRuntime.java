package org.sdserve.common.onnx;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtLoggingLevel;
import ai.onnxruntime.OrtSession;
import java.lang.System.Logger.Level;
import org.sdserve.common.error.ModelContractException;

/**
 * The process-wide ONNX Runtime environment with one shared intra-op thread pool: every session of the
 * process (all three stages in embedded mode) draws on the same threads instead of oversubscribing the cores.
 */
public final class OrtRuntime {
    private static final System.Logger LOG = System.getLogger(OrtRuntime.class.getName());
    private static OrtEnvironment env;
    private static int poolThreads;

    private OrtRuntime() {
    }

    /** The environment; the first caller's options size the pool for the life of the process. */
    public static synchronized OrtEnvironment environment(ExecutionOptions opts) {
        int intraOpThreads = opts.intraOpThreads();
        if (env == null) {
            int threads = intraOpThreads > 0 ? intraOpThreads : Runtime.getRuntime().availableProcessors();
            try (OrtEnvironment.ThreadingOptions pool = new OrtEnvironment.ThreadingOptions()) {
                pool.setGlobalIntraOpNumThreads(threads);
                pool.setGlobalInterOpNumThreads(1);
                pool.setGlobalSpinControl(opts.spinWait());
                env = OrtShutdownHook.without(() -> OrtEnvironment.getEnvironment(
                        OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING, "sdserve", pool));
                poolThreads = threads;
            } catch (OrtException | IllegalStateException e) {
                // Another library created the environment first: use it with per-session threads.
                env = OrtEnvironment.getEnvironment();
                poolThreads = -1;
                LOG.log(Level.WARNING, "ONNX Runtime environment existed already; using per-session threads: {0}",
                        e.getMessage());
            }
        }
        return env;
    }

    static synchronized boolean sharedPool() {
        return poolThreads > 0;
    }

    /** Session options for {@code opts}: the shared pool, full graph optimisation, CUDA when asked for. */
    static OrtSession.SessionOptions sessionOptions(ExecutionOptions opts, String component) throws OrtException {
        OrtSession.SessionOptions so = new OrtSession.SessionOptions();
        try {
            so.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            if (sharedPool()) {
                so.disablePerSessionThreads();
            } else if (opts.intraOpThreads() > 0) {
                so.setIntraOpNumThreads(opts.intraOpThreads());
            }
            if (opts.wantsGpu()) {
                try {
                    so.addCUDA(opts.deviceId());
                    LOG.log(Level.INFO, "{0}: CUDA execution provider on device {1}", component, opts.deviceId());
                } catch (OrtException | UnsatisfiedLinkError e) {
                    if (opts.requireGpu()) {
                        throw new ModelContractException(component + ": CUDA was required (require-gpu=true) but "
                                + "is not available: " + e.getMessage()
                                + " (build with -Pgpu and install CUDA 12 + cuDNN 9)", e);
                    }
                    LOG.log(Level.WARNING, "{0}: CUDA not available ({1}); running on CPU", component,
                            e.getMessage());
                }
            }
            return so;
        } catch (RuntimeException | OrtException e) {
            so.close();
            throw e;
        }
    }
}
