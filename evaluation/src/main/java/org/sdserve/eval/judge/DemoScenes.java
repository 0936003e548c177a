package org.sdserve.eval.judge;

/**
 * The demo model card's fixed prompt set (tools/demo-model/scenes.py judge_prompts): scene i of 64, every shape x
 * every colour, backgrounds and sizes cycling; what its prompt asks for, so that the judge can check an image.
 */
public record DemoScenes(String size, String colour, String shape, String background) {
    /** The set's length: indices beyond it cycle. */
    public static final int COUNT = 64;

    /** Scene {@code i mod 64}, as judge_prompts builds it. */
    public static DemoScenes of(int i) {
        int k = i % COUNT;
        int c = (k / PromptJudge.SHAPES.size()) % PromptJudge.COLOURS.size();
        return new DemoScenes((k / 2) % 2 == 0 ? "small" : "large", PromptJudge.COLOURS.get(c),
                PromptJudge.SHAPES.get(k % PromptJudge.SHAPES.size()),
                PromptJudge.COLOURS.get((c + 1 + (k * 3) % 7) % 8));
    }

    /** "a SIZE COLOUR SHAPE on a BACKGROUND background". */
    public String prompt() {
        return "a " + size + " " + colour + " " + shape + " on a " + background + " background";
    }
}
