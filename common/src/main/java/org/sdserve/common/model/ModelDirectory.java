package org.sdserve.common.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.sdserve.common.error.ModelContractException;

/**
 * A Stable Diffusion ONNX export on disk, in the diffusers / optimum layout: {@code model_index.json},
 * {@code scheduler/}, {@code tokenizer/}, {@code text_encoder/}, {@code unet/}, {@code vae_decoder/},
 * {@code vae_encoder/}. Each stage opens only the parts it serves.
 */
public final class ModelDirectory {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final Path root;

    private ModelDirectory(Path root) {
        this.root = root;
    }

    public static ModelDirectory open(Path root) {
        Path abs = root.toAbsolutePath().normalize();
        if (!Files.isDirectory(abs)) {
            throw new ModelContractException("model directory " + abs + " does not exist (set the model-dir "
                    + "setting to a Stable Diffusion ONNX export, e.g. models/sd-shapes-64)");
        }
        return new ModelDirectory(abs);
    }

    public Path root() {
        return root;
    }

    /** The model's name: its directory name ("sd-shapes-64"). */
    public String name() {
        return root.getFileName().toString();
    }

    /** A component folder ("unet", "tokenizer", ...), which must exist. */
    public Path component(String name) {
        Path p = root.resolve(name);
        if (!Files.isDirectory(p)) {
            throw new ModelContractException("model " + root + " has no " + name + "/ folder; a Stable Diffusion "
                    + "ONNX export has text_encoder/, tokenizer/, unet/, vae_decoder/, vae_encoder/, scheduler/");
        }
        return p;
    }

    public boolean has(String relative) {
        return Files.exists(root.resolve(relative));
    }

    /** Parses a JSON file of the model, e.g. "vae_decoder/config.json". */
    public JsonNode json(String relative) {
        return optionalJson(relative).orElseThrow(() -> new ModelContractException("model " + root
                + " has no " + relative));
    }

    public Optional<JsonNode> optionalJson(String relative) {
        Path p = root.resolve(relative);
        if (!Files.isRegularFile(p)) {
            return Optional.empty();
        }
        try {
            return Optional.of(JSON.readTree(p.toFile()));
        } catch (IOException e) {
            throw new ModelContractException("model file " + p + " is not valid JSON: " + e.getMessage(), e);
        }
    }

    public static ObjectMapper mapper() {
        return JSON;
    }
}
