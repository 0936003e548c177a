package org.sdserve.denoise.scheduler;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.InputStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The training noise schedules bit for bit: torch.linspace under each of its CPU kernels, and betas,
 * alphas_cumprod and sigmas of the three beta schedules as diffusers builds them. Goldens:
 * goldens/noise-schedules.json, written by tools/goldens/noise_schedules.py with Debian's torch 1.13.
 */
class NoiseScheduleTest {
    private static JsonNode goldens;

    @BeforeAll
    static void load() throws Exception {
        try (InputStream in = NoiseScheduleTest.class.getResourceAsStream("/goldens/noise-schedules.json")) {
            goldens = new ObjectMapper().readTree(in);
        }
    }

    private static float[] floats(JsonNode hexes) {
        String[] words = hexes.asText().split(" ");
        float[] out = new float[words.length];
        for (int i = 0; i < words.length; i++) {
            out[i] = Float.intBitsToFloat(Integer.parseUnsignedInt(words[i], 16));
        }
        return out;
    }

    /** Bit for bit, naming the first element that differs and how many do. */
    private static void assertBits(float[] want, float[] got, String what) {
        assertEquals(want.length, got.length, what);
        int differ = 0;
        int first = -1;
        for (int i = 0; i < want.length; i++) {
            if (Float.floatToRawIntBits(want[i]) != Float.floatToRawIntBits(got[i])) {
                differ++;
                first = first < 0 ? i : first;
            }
        }
        if (differ > 0) {
            throw new AssertionError(String.format("%s: %d of %d differ, first [%d] torch %s, ours %s", what,
                    differ, want.length, first, want[first], got[first]));
        }
    }

    @Test
    void linspaceIsTorchsUnderEachCpuKernel() {
        for (NoiseSchedule.LinspaceKernel k : NoiseSchedule.LinspaceKernel.values()) {
            JsonNode cases = goldens.get("kernels").get(k.name().toLowerCase(java.util.Locale.ROOT)).get("linspace");
            for (JsonNode c : cases) {
                float[] got = NoiseSchedule.linspace((float) c.get("start").asDouble(), (float) c.get("end")
                        .asDouble(), c.get("steps").asInt(), k);
                assertBits(floats(c.get("float32")), got, k + " linspace(" + c.get("start") + ", " + c.get("end")
                        + ", " + c.get("steps") + ")");
            }
        }
    }

    @Test
    void betasAlphasCumprodAndSigmasAreDiffusersBitForBit() {
        for (JsonNode s : goldens.get("kernels").get("avx2").get("schedules")) {
            SchedulerConfig c = SchedulerConfig.sd15().withBetas(s.get("num_train_timesteps").asInt(),
                    s.get("beta_start").asDouble(), s.get("beta_end").asDouble(), s.get("beta_schedule").asText());
            String name = s.get("name").asText();
            assertBits(floats(s.get("betas")), NoiseSchedule.betas(c), name + " betas");
            NoiseSchedule schedule = new NoiseSchedule(c);
            float[] ac = new float[schedule.size()];
            for (int i = 0; i < ac.length; i++) {
                ac[i] = schedule.alphaCumprod(i);
            }
            assertBits(floats(s.get("alphas_cumprod")), ac, name + " alphas_cumprod");
            assertBits(floats(s.get("sigmas")), schedule.sigmas(), name + " sigmas");
        }
    }
}
