package org.sdserve.common.onnx;

import java.util.Locale;

/**
 * Where and how ONNX Runtime runs a stage's graphs.
 *
 * @param device "cpu" (default) or "cuda" (needs the {@code -Pgpu} build and a CUDA 12 + cuDNN 9 runtime)
 * @param deviceId CUDA device ordinal
 * @param intraOpThreads threads of the process-wide ONNX Runtime pool; 0 = the number of cores
 * @param requireGpu with device "cuda": fail at start-up instead of falling back to CPU
 * @param spinWait whether idle pool threads spin between parallel sections (lower latency in a process that has
 *     the cores to itself; wasted cycles stolen from the other stage processes when several share the cores)
 */
public record ExecutionOptions(String device, int deviceId, int intraOpThreads, boolean requireGpu,
                               boolean spinWait) {
    public static final ExecutionOptions CPU = new ExecutionOptions("cpu", 0, 0, false, true);

    public ExecutionOptions {
        device = device.toLowerCase(Locale.ROOT);
        if (!device.equals("cpu") && !device.equals("cuda")) {
            throw new IllegalArgumentException("device must be \"cpu\" or \"cuda\", got \"" + device + "\"");
        }
        if (intraOpThreads < 0) {
            throw new IllegalArgumentException("intra-op threads must be >= 0, got " + intraOpThreads);
        }
    }

    public boolean wantsGpu() {
        return device.equals("cuda");
    }
}
