package org.sdserve.common.noise;

import java.util.Arrays;
import org.sdserve.common.tensor.FloatTensor;

/**
 * Seeded noise for a batch: one generator per image, as diffusers does with a list of generators. Item i of
 * every draw comes from seed i alone, so an image does not change with batch size or with the replica that ran it.
 */
public final class NoiseSource {
    private final TorchGenerator[] generators;
    private final boolean wholeBatch;
    private long draws;

    public NoiseSource(long[] seeds) {
        this(seeds, TorchGenerator.Kernel.AVX2);
    }

    /** One generator per seed, reproducing torch's {@code kernel}. */
    public NoiseSource(long[] seeds, TorchGenerator.Kernel kernel) {
        this(Arrays.stream(seeds).mapToObj(s -> new TorchGenerator(s, kernel)).toArray(TorchGenerator[]::new), false);
    }

    private NoiseSource(TorchGenerator[] generators, boolean wholeBatch) {
        this.generators = generators;
        this.wholeBatch = wholeBatch;
    }

    /**
     * One generator for whole tensors, as {@code torch.randn(shape, generator=g)} draws them: for reproducing
     * reference runs that pass a single generator (diffusers' scheduler tests), not for serving.
     */
    public static NoiseSource wholeBatch(long seed) {
        return new NoiseSource(new TorchGenerator[] {new TorchGenerator(seed)}, true);
    }

    public static NoiseSource wholeBatch(long seed, TorchGenerator.Kernel kernel) {
        return new NoiseSource(new TorchGenerator[] {new TorchGenerator(seed, kernel)}, true);
    }

    public int batch() {
        return generators.length;
    }

    /** How many tensors {@link #randn} has drawn: with the shape, the generators' position. */
    public long draws() {
        return draws;
    }

    /** Standard normal noise of {@code shape} = [B, ...]: item i drawn as randn([1, ...]) from generator i. */
    public FloatTensor randn(long[] shape) {
        draws++;
        if (wholeBatch) {
            FloatTensor t = FloatTensor.zeros(shape);
            generators[0].randn(t.data());
            return t;
        }
        if (shape[0] != generators.length) {
            throw new IllegalArgumentException("noise for " + shape[0] + " items from " + generators.length
                    + " seeds");
        }
        FloatTensor t = FloatTensor.zeros(shape);
        int item = t.itemSize();
        float[] buf = new float[item];
        for (int i = 0; i < generators.length; i++) {
            generators[i].randn(buf);
            System.arraycopy(buf, 0, t.data(), i * item, item);
        }
        return t;
    }
}
