package org.sdserve.denoise.core;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.function.BooleanSupplier;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.common.error.JobCancelledException;
import org.sdserve.common.tensor.FloatTensor;

/**
 * The denoiser's activation memory: what its jobs' UNet calls cost, and how much of it this replica may have in
 * flight at once. A job is admitted only while its cost fits beside the jobs running (else it waits); a job that
 * could never fit is refused. Batching merges admitted jobs' rows only, so no merged call goes past the budget.
 *
 * <p>The cost of a job of R UNet rows (2 per guided image) over T latent tokens (h x w) is
 * {@code R x (perPair x T^2 + perToken x T) x MARGIN}: self-attention over the tokens grows with T^2 and
 * dominates large images, convolutions grow with T. The two coefficients are the model's, measured at start-up
 * ({@link #calibrate}).
 */
public final class MemoryBudget {
    /**
     * Head-room on the fitted costs: on the demo model the fit from latent sides 32 and 64 undershot the peaks
     * measured at 96 to 256 by 6 to 19% (fresh processes, 2 cores).
     */
    public static final double MARGIN = 1.5;

    /** Bytes per UNet row at T latent tokens: perPair T^2 + perToken T. */
    public record CostModel(double perTokenPair, double perToken) {
        public long rowBytes(long tokens) {
            return (long) Math.ceil((perTokenPair * tokens * tokens + perToken * tokens) * MARGIN);
        }
    }

    private final long budget; // bytes; 0 = no budget (admission off)
    private final CostModel cost; // null = not measured (admission off)
    private long inUse;

    public MemoryBudget(long budget, CostModel cost) {
        this.budget = budget;
        this.cost = cost;
    }

    public static final MemoryBudget OFF = new MemoryBudget(0, null);

    public boolean enabled() {
        return budget > 0 && cost != null;
    }

    public long budget() {
        return enabled() ? budget : 0;
    }

    public Optional<CostModel> cost() {
        return Optional.ofNullable(cost);
    }

    public synchronized long inUse() {
        return inUse;
    }

    /** The cost of a job of {@code rows} UNet rows at {@code tokens} latent tokens (0 when admission is off). */
    public long bytes(int rows, long tokens) {
        return enabled() ? rows * cost.rowBytes(tokens) : 0;
    }

    /**
     * Waits until {@code bytes} fit beside what runs, then takes them; refuses (InvalidRequestException) what
     * could never fit, and gives up (JobCancelledException) once {@code cancelled} says so.
     *
     * @param what the job in words, for the refusal ("64x64, 2 image(s), guided")
     */
    public void acquire(long bytes, String what, BooleanSupplier cancelled) {
        if (!enabled() || bytes == 0) {
            return;
        }
        InvalidRequestException.require(bytes <= budget, "%s needs about %s of activation memory in the denoiser; "
                + "this replica's budget is %s (sd.denoiser.memory-budget): ask for a smaller size or fewer images",
                what, size(bytes), size(budget));
        synchronized (this) {
            while (inUse + bytes > budget) {
                if (cancelled.getAsBoolean()) {
                    throw new JobCancelledException("cancelled while waiting for denoiser memory");
                }
                try {
                    wait(100);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new JobCancelledException("interrupted while waiting for denoiser memory");
                }
            }
            inUse += bytes;
        }
    }

    public synchronized void release(long bytes) {
        if (bytes > 0) {
            inUse -= bytes;
            notifyAll();
        }
    }

    /** "1.5 GiB", "300 MiB", "420 KiB". */
    public static String size(long bytes) {
        return bytes >= 1L << 30 ? String.format(Locale.ROOT, "%.1f GiB", bytes / (double) (1L << 30))
                : bytes >= 1L << 20 ? String.format(Locale.ROOT, "%d MiB", bytes >> 20)
                : String.format(Locale.ROOT, "%d KiB", (bytes + 1023) >> 10);
    }

    /**
     * Measures the cost model on this process: the resident memory one UNet call of one row adds at latent side
     * {@code side / 2}, then at {@code side} (Linux: /proc/self/clear_refs resets the peak, VmHWM reads it), after
     * a warm-up call at side 8 (one-time costs: thread pools, kernels), fitted to perPair T^2 + perToken T. ONNX
     * Runtime's CPU arena keeps what a call took, so the second call adds only what it needs beyond the first:
     * its own cost is the sum of both. Empty where that cannot be measured (not Linux, or the UNet's memory is
     * not this process's: a GPU).
     */
    public static Optional<CostModel> calibrate(UNet unet, int side) {
        try {
            long t1 = (long) (side / 2) * (side / 2);
            long t2 = (long) side * side;
            peakOf(unet, 8);
            double m1 = peakOf(unet, side / 2);
            double m2 = m1 + peakOf(unet, side);
            // m = a t^2 + b t through both points
            double a = (m2 / t2 - m1 / t1) / (t2 - t1);
            double b = m1 / t1 - a * t1;
            if (!(a > 0) || !Double.isFinite(b)) {
                return Optional.empty();
            }
            return Optional.of(new CostModel(a, Math.max(b, 0)));
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
    }

    private static double peakOf(UNet unet, int side) throws IOException {
        int tokens = unet.contextLength() > 0 ? unet.contextLength() : 77;
        int width = unet.contextWidth() > 0 ? unet.contextWidth() : 768;
        FloatTensor sample = FloatTensor.zeros(1, unet.inputChannels(), side, side);
        FloatTensor context = FloatTensor.zeros(1, tokens, width);
        System.gc();
        Files.writeString(Path.of("/proc/self/clear_refs"), "5"); // peak RSS := current RSS
        long before = status("VmRSS:");
        unet.predict(sample, 500, context);
        return Math.max(0, status("VmHWM:") - before);
    }

    /** A /proc/self/status field in bytes. */
    private static long status(String field) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith(field)) {
                return Long.parseLong(line.replaceAll("\\D", "")) * 1024;
            }
        }
        throw new IOException("no " + field + " in /proc/self/status");
    }

    /**
     * What "auto" means: 80% of the memory this process may use (the cgroup's memory.max, else the machine's
     * MemTotal) less what it holds and may still take without ONNX Runtime: its resident memory (the model), with
     * the Java heap counted at its maximum rather than what it has committed so far.
     */
    public static OptionalLong autoBudget() {
        try {
            long limit = cgroupLimit().orElse(memTotal());
            long committed = java.lang.management.ManagementFactory.getMemoryMXBean().getHeapMemoryUsage()
                    .getCommitted();
            long rss = status("VmRSS:");
            long held = Math.max(rss, rss - committed + Runtime.getRuntime().maxMemory());
            return OptionalLong.of(Math.max(0, (long) (limit * 0.8) - held));
        } catch (IOException | RuntimeException e) {
            return OptionalLong.empty();
        }
    }

    private static OptionalLong cgroupLimit() {
        for (String f : new String[] {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
            try {
                String v = Files.readString(Path.of(f)).trim();
                if (v.matches("\\d+") && Long.parseLong(v) < (1L << 50)) {
                    return OptionalLong.of(Long.parseLong(v));
                }
            } catch (IOException | RuntimeException e) {
                // not this cgroup version
            }
        }
        return OptionalLong.empty();
    }

    private static long memTotal() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
            if (line.startsWith("MemTotal:")) {
                return Long.parseLong(line.replaceAll("\\D", "")) * 1024;
            }
        }
        throw new IOException("no MemTotal in /proc/meminfo");
    }

    /** Parses "auto", "0" (off), or bytes with an optional K, M, G (binary) suffix: "6G", "512M", "1073741824". */
    public static OptionalLong parse(String setting) {
        String s = setting.trim().toUpperCase(Locale.ROOT);
        if (s.equals("AUTO")) {
            return OptionalLong.empty();
        }
        long unit = 1;
        if (s.endsWith("IB")) {
            s = s.substring(0, s.length() - 2);
        } else if (s.endsWith("B")) {
            s = s.substring(0, s.length() - 1);
        }
        switch (s.isEmpty() ? ' ' : s.charAt(s.length() - 1)) {
            case 'K' -> unit = 1L << 10;
            case 'M' -> unit = 1L << 20;
            case 'G' -> unit = 1L << 30;
            case 'T' -> unit = 1L << 40;
            default -> unit = 1;
        }
        String digits = unit == 1 ? s : s.substring(0, s.length() - 1);
        if (!digits.matches("\\d{1,15}")) {
            throw new IllegalArgumentException("sd.denoiser.memory-budget must be auto, 0 or a size such as 6G, got "
                    + setting);
        }
        return OptionalLong.of(Long.parseLong(digits) * unit);
    }
}
