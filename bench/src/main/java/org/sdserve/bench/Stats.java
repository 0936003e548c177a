package org.sdserve.bench;

import java.util.List;

/** The benchmarks' summaries. */
final class Stats {
    private Stats() {
    }

    /** The median (the mean of the two middle values for an even count). */
    static double median(List<Double> xs) {
        double[] v = xs.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        int n = v.length;
        return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    }
}
