package org.sdserve.denoise.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.OptionalLong;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.common.error.JobCancelledException;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.tensor.FloatTensor;
import org.sdserve.common.testing.DemoModel;

/** Admission against activation memory, and the cost model measured on the demo model's real UNet. */
class MemoryBudgetTest {
    private static final MemoryBudget.CostModel COST = new MemoryBudget.CostModel(2, 2048);

    @Test
    void settingsParse() {
        assertEquals(OptionalLong.empty(), MemoryBudget.parse("auto"));
        assertEquals(OptionalLong.of(0), MemoryBudget.parse("0"));
        assertEquals(OptionalLong.of(6L << 30), MemoryBudget.parse("6G"));
        assertEquals(OptionalLong.of(512L << 20), MemoryBudget.parse("512MiB"));
        assertEquals(OptionalLong.of(1234), MemoryBudget.parse("1234"));
        assertThrows(IllegalArgumentException.class, () -> MemoryBudget.parse("lots"));
    }

    @Test
    void aJobWaitsUntilTheRunningOnesLeaveRoomAndOneThatNeverFitsIsRefused() throws Exception {
        MemoryBudget m = new MemoryBudget(130 << 20, COST);
        long job = m.bytes(2, 96 * 96); // 2 rows x (2 x 9216^2 + 2048 x 9216) x 1.5: 540 MiB
        assertEquals(2 * (long) Math.ceil((2.0 * 9216 * 9216 + 2048.0 * 9216) * MemoryBudget.MARGIN), job);
        InvalidRequestException refused = assertThrows(InvalidRequestException.class,
                () -> m.acquire(job, "768x768 with 1 image(s), guided", () -> false));
        assertEquals("768x768 with 1 image(s), guided needs about 540 MiB of activation memory in the denoiser; this "
                + "replica's budget is 130 MiB (sd.denoiser.memory-budget): ask for a smaller size or fewer images",
                refused.getMessage());

        long half = m.bytes(1, 64 * 64); // (2 x 4096^2 + 2048 x 4096) x 1.5 = 60 MiB: two fit, a third waits
        m.acquire(half, "a", () -> false);
        m.acquire(half, "b", () -> false);
        CompletableFuture<Void> third = CompletableFuture.runAsync(() -> m.acquire(half, "c", () -> false));
        Thread.sleep(300);
        assertFalse(third.isDone(), "admitted past the budget");
        m.release(half);
        third.get(5, TimeUnit.SECONDS);
        assertEquals(2 * half, m.inUse());

        AtomicBoolean gone = new AtomicBoolean();
        CompletableFuture<Void> fourth = CompletableFuture.runAsync(() -> m.acquire(half, "d", gone::get));
        gone.set(true);
        Exception e = assertThrows(Exception.class, () -> fourth.get(5, TimeUnit.SECONDS));
        assertTrue(e.getCause() instanceof JobCancelledException, String.valueOf(e.getCause()));
        assertEquals(2 * half, m.inUse(), "a job that gave up took nothing");
    }

    /**
     * Each in a fresh JVM, as a denoiser process calibrates right after loading its model (in a JVM that has
     * already freed native memory, new allocations reuse it without raising the resident size, and ONNX Runtime's
     * arena keeps what earlier calls took): one calibrates, the other measures a call at an unmeasured size.
     */
    @Test
    void theMeasuredCostModelPredictsTheDemoUNetsPeakMemoryAtALargerSize() throws Exception {
        if (!Files.exists(Path.of("/proc/self/clear_refs"))) {
            return; // not Linux: admission stays off, nothing to check
        }
        String[] cost = probe("calibrate");
        long predicted = new MemoryBudget.CostModel(Double.parseDouble(cost[0]), Double.parseDouble(cost[1]))
                .rowBytes(96 * 96);
        long peak = Long.parseLong(probe("measure")[0]);
        System.out.printf("memory: cost model %s B/token pair + %s B/token; 768x768 one row: measured %d MiB, "
                + "predicted %d MiB with the margin%n", cost[0], cost[1], peak >> 20, predicted >> 20);
        assertTrue(predicted >= peak, "the budget would admit more than fits: " + predicted + " < " + peak);
        assertTrue(predicted <= 2.5 * peak, "the estimate is far too high: " + predicted + " vs " + peak);
    }

    private static String[] probe(String mode) throws Exception {
        Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-cp",
                System.getProperty("java.class.path"), Probe.class.getName(), mode).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(120, TimeUnit.SECONDS) && p.exitValue() == 0, out);
        return out.lines().filter(l -> l.startsWith("probe ")).findFirst().orElseThrow(() -> new AssertionError(out))
                .substring(6).split(" ");
    }

    /** "calibrate": the cost model of a fresh UNet; "measure": the memory one call at 96x96 latents adds. */
    public static final class Probe {
        public static void main(String[] args) throws Exception {
            try (UNet unet = UNet.load(DemoModel.directory(), ExecutionOptions.CPU)) {
                if (args[0].equals("calibrate")) {
                    MemoryBudget.CostModel cost = MemoryBudget.calibrate(unet, 64).orElseThrow();
                    System.out.printf(java.util.Locale.ROOT, "probe %.4f %.1f%n", cost.perTokenPair(),
                            cost.perToken());
                    return;
                }
                unet.predict(FloatTensor.zeros(1, 4, 8, 8), 500, FloatTensor.zeros(1, 77, 128)); // warm-up
                Files.writeString(Path.of("/proc/self/clear_refs"), "5");
                long before = status("VmRSS:");
                unet.predict(FloatTensor.zeros(1, 4, 96, 96), 500, FloatTensor.zeros(1, 77, 128));
                System.out.println("probe " + (status("VmHWM:") - before));
            }
        }
    }

    private static long status(String field) throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith(field)) {
                return Long.parseLong(line.replaceAll("\\D", "")) * 1024;
            }
        }
        throw new IllegalStateException(field);
    }
}
