package org.sdserve.eval.metrics;

/**
 * Inception Score (Salimans et al. 2016), as the reference implementation (openai/improved-gan) computes it: the
 * images in {@code splits} contiguous parts; per part, exp of the mean over its images of KL(p(y|x) || p(y)), p(y)
 * the part's mean class distribution; the score is the mean over parts, with their standard deviation.
 */
public final class InceptionScore {
    /** The mean of the parts' scores, and their (population) standard deviation, as np.mean and np.std. */
    public record Score(double mean, double std) {
    }

    private InceptionScore() {
    }

    /** From logits [n, classes] (softmax taken here, in float64). */
    public static Score ofLogits(double[][] logits, int splits) {
        double[][] p = new double[logits.length][];
        for (int i = 0; i < logits.length; i++) {
            double max = Double.NEGATIVE_INFINITY;
            for (double v : logits[i]) {
                max = Math.max(max, v);
            }
            double sum = 0;
            p[i] = new double[logits[i].length];
            for (int k = 0; k < p[i].length; k++) {
                p[i][k] = Math.exp(logits[i][k] - max);
                sum += p[i][k];
            }
            for (int k = 0; k < p[i].length; k++) {
                p[i][k] /= sum;
            }
        }
        return of(p, splits);
    }

    /** From class probabilities [n, classes]. */
    public static Score of(double[][] probs, int splits) {
        int n = probs.length;
        if (splits < 1 || n < splits) {
            throw new IllegalArgumentException("splits must be in [1, " + n + "] for " + n + " images, got " + splits);
        }
        double[] scores = new double[splits];
        for (int s = 0; s < splits; s++) {
            int from = s * n / splits;
            int to = (s + 1) * n / splits;
            int classes = probs[from].length;
            double[] py = new double[classes];
            for (int i = from; i < to; i++) {
                for (int k = 0; k < classes; k++) {
                    py[k] += probs[i][k];
                }
            }
            for (int k = 0; k < classes; k++) {
                py[k] /= (to - from);
            }
            double kl = 0;
            for (int i = from; i < to; i++) {
                double row = 0;
                for (int k = 0; k < classes; k++) {
                    double p = probs[i][k];
                    row += p * (Math.log(p) - Math.log(py[k])); // (0 log 0 is NaN, as in numpy)
                }
                kl += row;
            }
            scores[s] = Math.exp(kl / (to - from));
        }
        double mean = 0;
        for (double v : scores) {
            mean += v;
        }
        mean /= splits;
        double var = 0;
        for (double v : scores) {
            var += (v - mean) * (v - mean);
        }
        return new Score(mean, Math.sqrt(var / splits));
    }
}
