package org.sdserve.common.image;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.InputStream;
import java.util.Locale;
import org.junit.jupiter.api.Test;

/**
 * PilResample against Pillow itself: common/src/test/resources/pil-resize-goldens.json, made by
 * tools/goldens/pil_resize.py with Pillow 9.4 (Debian's python3-pil), Image.resize of mode "F" planes, bicubic and
 * Lanczos, down, up and one-way, and the demo's 64x64 to Inception's 299x299 as clean-fid resizes.
 */
class PilResampleTest {
    /** The goldens' input: 127.5 + 127.5 sin(0.37 x + 0.11 y^1.3) cos(0.05 x y), float64 then float32. */
    private static float[] plane(int w, int h) {
        float[] v = new float[w * h];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                v[y * w + x] = (float) (127.5 + 127.5 * Math.sin(0.37 * x + 0.11 * Math.pow(y, 1.3))
                        * Math.cos(0.05 * x * y));
            }
        }
        return v;
    }

    @Test
    void resizesAsPillowDoes() throws Exception {
        JsonNode goldens;
        try (InputStream in = PilResampleTest.class.getResourceAsStream("/pil-resize-goldens.json")) {
            goldens = new ObjectMapper().readTree(in);
        }
        for (JsonNode c : goldens.get("cases")) {
            int w = c.get("width").asInt();
            int h = c.get("height").asInt();
            int ow = c.get("out_width").asInt();
            int oh = c.get("out_height").asInt();
            String name = String.format(Locale.ROOT, "%s %dx%d -> %dx%d", c.get("filter").asText(), w, h, ow, oh);
            float[] out = PilResample.resize(plane(w, h), w, h, ow, oh,
                    PilResample.Filter.valueOf(c.get("filter").asText().toUpperCase(Locale.ROOT)));
            assertEquals(ow * oh, out.length, name);
            int stride = c.get("stride").asInt();
            double maxDiff = 0;
            for (int i = 0; i < c.get("out").size(); i++) {
                maxDiff = Math.max(maxDiff, Math.abs(out[i * stride] - c.get("out").get(i).asDouble()));
            }
            double sum = 0;
            for (float v : out) {
                sum += v;
            }
            System.out.printf(Locale.ROOT, "pillow resize %s: max |diff| %.3g over %d values, sum %.6f (pillow "
                    + "%.6f)%n", name, maxDiff, c.get("out").size(), sum, c.get("sum").asDouble());
            assertEquals(0, maxDiff, 0.0, name + ": bit for bit (double coefficients and sums, float32 per pass)");
            assertEquals(c.get("sum").asDouble(), sum, 1e-6 * out.length, name);
        }
    }
}
