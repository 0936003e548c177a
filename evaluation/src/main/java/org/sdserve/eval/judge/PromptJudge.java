package org.sdserve.eval.judge;

import java.util.List;
import org.sdserve.common.image.RgbImage;

/**
 * docs/prompt-adherence-judge.md, in Java: what colour, background, shape and size an image of the demo model
 * shows (the rules of tools/demo-model/scenes.py's judge, which the model card's adherence figures come from).
 */
public final class PromptJudge {
    public static final List<String> COLOURS = List.of("red", "green", "blue", "yellow", "purple", "orange", "white",
            "black");
    static final int[][] PALETTE = {{220, 30, 30}, {30, 160, 50}, {30, 70, 220}, {240, 220, 30}, {140, 50, 180},
        {245, 130, 20}, {245, 245, 245}, {15, 15, 15}};
    public static final List<String> SHAPES = List.of("circle", "square", "triangle", "cross");
    private static final double[][] BOX = {{-1, 1, -1, 1}, {-0.85, 0.85, -0.85, 0.85}, {-1, 1, -1, 0.8},
        {-1, 1, -1, 1}};

    public record Verdict(String colour, String background, String shape, String size) {
    }

    private PromptJudge() {
    }

    public static Verdict judge(RgbImage img) {
        int w = img.width();
        int h = img.height();
        int[] cls = new int[w * h];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                cls[y * w + x] = nearest(img.red(x, y), img.green(x, y), img.blue(x, y));
            }
        }
        int[] border = new int[COLOURS.size()];
        for (int x = 0; x < w; x++) {
            for (int y : new int[] {0, 1, h - 2, h - 1}) {
                border[cls[y * w + x]]++;
            }
        }
        for (int y = 0; y < h; y++) {
            for (int x : new int[] {0, 1, w - 2, w - 1}) {
                border[cls[y * w + x]]++;
            }
        }
        int bg = argmax(border);
        int[] counts = new int[COLOURS.size()];
        for (int c : cls) {
            counts[c]++;
        }
        counts[bg] = 0;
        int fg = argmax(counts);
        if (counts[fg] < 0.01 * w * h) {
            return new Verdict("none", COLOURS.get(bg), "none", "none");
        }
        int x0 = w;
        int x1 = 0;
        int y0 = h;
        int y1 = 0;
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                if (cls[y * w + x] == fg) {
                    x0 = Math.min(x0, x);
                    x1 = Math.max(x1, x + 1);
                    y0 = Math.min(y0, y);
                    y1 = Math.max(y1, y + 1);
                }
            }
        }
        String size = Math.max(x1 - x0, y1 - y0) > 0.55 * Math.max(w, h) ? "large" : "small";
        int best = 0;
        double bestIou = -1;
        for (int s = 0; s < SHAPES.size(); s++) {
            int inter = 0;
            int union = 0;
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    double u = BOX[s][0] + (x + 0.5 - x0) / (x1 - x0) * (BOX[s][1] - BOX[s][0]);
                    double v = BOX[s][2] + (y + 0.5 - y0) / (y1 - y0) * (BOX[s][3] - BOX[s][2]);
                    boolean t = inside(s, u, v);
                    boolean m = cls[y * w + x] == fg;
                    inter += t && m ? 1 : 0;
                    union += t || m ? 1 : 0;
                }
            }
            double iou = (double) inter / Math.max(1, union);
            if (iou > bestIou) {
                bestIou = iou;
                best = s;
            }
        }
        return new Verdict(COLOURS.get(fg), COLOURS.get(bg), SHAPES.get(best), size);
    }

    private static boolean inside(int shape, double u, double v) {
        return switch (shape) {
            case 0 -> u * u + v * v <= 1;
            case 1 -> Math.abs(u) <= 0.85 && Math.abs(v) <= 0.85;
            case 2 -> v >= -1 && v <= 0.8 && Math.abs(u) <= (v + 1) / 1.8;
            default -> (Math.abs(u) <= 0.33 && Math.abs(v) <= 1) || (Math.abs(v) <= 0.33 && Math.abs(u) <= 1);
        };
    }

    private static int nearest(int r, int g, int b) {
        int best = 0;
        long bestD = Long.MAX_VALUE;
        for (int i = 0; i < PALETTE.length; i++) {
            long dr = r - PALETTE[i][0];
            long dg = g - PALETTE[i][1];
            long db = b - PALETTE[i][2];
            long d = dr * dr + dg * dg + db * db;
            if (d < bestD) {
                bestD = d;
                best = i;
            }
        }
        return best;
    }

    private static int argmax(int[] a) {
        int best = 0;
        for (int i = 1; i < a.length; i++) {
            if (a[i] > a[best]) {
                best = i;
            }
        }
        return best;
    }
}
