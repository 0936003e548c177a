package org.sdserve.orchestrator.auth;

import io.grpc.Status;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The bearer tokens the public API takes, from a file (a Kubernetes Secret mounted as one), one per line:
 * <pre>
 *   # name   token (or sha256:HEX of it)          rights                        quotas
 *   web      7f3c...at least 16 characters        generate,watch,cancel,list    jobs=4 rate=2
 *   batch    sha256:9b1e...                       all                           jobs=64
 * </pre>
 * rights: a comma list of generate, watch, cancel, list (its own jobs), others (every token's jobs), or {@code all};
 * {@code jobs=N} caps its jobs waiting or
 * running at once, {@code rate=R} its submissions per second (both unlimited when left out). Tokens are kept only
 * as SHA-256 digests and compared by digest, so a file may hold the digests alone.
 */
public final class Tokens {
    static final int MIN_TOKEN_LENGTH = 16;
    private final Map<String, Principal> byDigest;

    private Tokens(Map<String, Principal> byDigest) {
        this.byDigest = byDigest;
    }

    public static Tokens load(Path file) {
        try {
            return parse(Files.readAllLines(file, StandardCharsets.UTF_8), file.toString());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the tokens file " + file + ": " + e.getMessage(), e);
        }
    }

    /** @throws IllegalArgumentException naming the line that is wrong (never quoting a token) */
    static Tokens parse(List<String> lines, String where) {
        Map<String, Principal> byDigest = new HashMap<>();
        Set<String> names = new java.util.HashSet<>();
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i).strip();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            String at = where + " line " + (i + 1);
            String[] f = line.split("\\s+");
            if (f.length < 3) {
                throw new IllegalArgumentException(at + ": expected NAME TOKEN RIGHTS [jobs=N] [rate=R]");
            }
            String name = f[0];
            if (!names.add(name)) {
                throw new IllegalArgumentException(at + ": the name " + name + " is used twice");
            }
            String digest;
            if (f[1].startsWith("sha256:")) {
                digest = f[1].substring(7).toLowerCase(Locale.ROOT);
                if (!digest.matches("[0-9a-f]{64}")) {
                    throw new IllegalArgumentException(at + ": sha256: must be followed by 64 hex digits");
                }
            } else {
                if (f[1].length() < MIN_TOKEN_LENGTH) {
                    throw new IllegalArgumentException(at + ": the token of " + name + " is shorter than "
                            + MIN_TOKEN_LENGTH + " characters");
                }
                digest = sha256(f[1]);
            }
            Set<Right> rights = EnumSet.noneOf(Right.class);
            for (String r : f[2].split(",")) {
                if (r.equals("all")) {
                    rights.addAll(EnumSet.allOf(Right.class));
                } else {
                    try {
                        rights.add(Right.valueOf(r.toUpperCase(Locale.ROOT)));
                    } catch (IllegalArgumentException e) {
                        throw new IllegalArgumentException(at + ": unknown right \"" + r + "\" (generate, watch, "
                                + "cancel, list, others, all)");
                    }
                }
            }
            int jobs = 0;
            double rate = 0;
            for (int k = 3; k < f.length; k++) {
                try {
                    if (f[k].startsWith("jobs=")) {
                        jobs = Integer.parseInt(f[k].substring(5));
                    } else if (f[k].startsWith("rate=")) {
                        rate = Double.parseDouble(f[k].substring(5));
                    } else {
                        throw new NumberFormatException();
                    }
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException(at + ": expected jobs=N or rate=R, got " + f[k]);
                }
                if (jobs < 0 || rate < 0 || Double.isNaN(rate)) {
                    throw new IllegalArgumentException(at + ": quotas must be >= 0");
                }
            }
            if (byDigest.put(digest, new Principal(name, rights, jobs, rate)) != null) {
                throw new IllegalArgumentException(at + ": the same token as an earlier line");
            }
        }
        if (byDigest.isEmpty()) {
            throw new IllegalArgumentException(where + " holds no token");
        }
        return new Tokens(Map.copyOf(byDigest));
    }

    public int size() {
        return byDigest.size();
    }

    /**
     * The holder of a bearer token.
     *
     * @param authorization the Authorization value ("Bearer TOKEN"), or null
     * @throws io.grpc.StatusRuntimeException UNAUTHENTICATED without a token or with an unknown one
     */
    public Principal authenticate(String authorization) {
        if (authorization == null || authorization.isBlank()) {
            throw Status.UNAUTHENTICATED.withDescription("a bearer token is required (authorization: Bearer TOKEN)")
                    .asRuntimeException();
        }
        String a = authorization.strip();
        if (a.length() < 7 || !a.regionMatches(true, 0, "Bearer ", 0, 7)) {
            throw Status.UNAUTHENTICATED.withDescription("the authorization must be \"Bearer TOKEN\"")
                    .asRuntimeException();
        }
        Principal p = byDigest.get(sha256(a.substring(7).strip()));
        if (p == null) {
            throw Status.UNAUTHENTICATED.withDescription("the bearer token is not known").asRuntimeException();
        }
        return p;
    }

    static String sha256(String token) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256")
                    .digest(token.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
