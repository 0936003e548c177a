package org.sdserve.common.onnx;

import java.lang.reflect.Field;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * ONNX Runtime's Java binding frees its environment in a JVM shutdown hook of its own (OrtEnvironment registers it
 * when it creates the environment). Shutdown hooks run concurrently, so at SIGTERM a session still running (a
 * denoiser draining its calls, an embedded orchestrator finishing its jobs) crashes the JVM with SIGSEGV in
 * libonnxruntime. This takes that hook out again: the environment then lives until the process ends, and the
 * services' own shutdown can let work in flight finish. Seeing the registered hooks needs
 * {@code --add-opens java.base/java.lang=ALL-UNNAMED} (the services' jar manifests carry it as Add-Opens);
 * without it the hook stays, and this says so once.
 */
final class OrtShutdownHook {
    private static final System.Logger LOG = System.getLogger(OrtShutdownHook.class.getName());

    private OrtShutdownHook() {
    }

    /** Runs {@code create} and removes the shutdown hooks it registered. */
    static <T> T without(Supplier<T> create) {
        Set<Thread> before = hooks();
        T created = create.get();
        Set<Thread> after = hooks();
        if (before == null || after == null) {
            LOG.log(System.Logger.Level.INFO, "ONNX Runtime's shutdown hook stays (run with --add-opens "
                    + "java.base/java.lang=ALL-UNNAMED to remove it): work in flight at shutdown may crash the JVM");
            return created;
        }
        after.removeAll(before);
        for (Thread hook : after) {
            Runtime.getRuntime().removeShutdownHook(hook);
        }
        LOG.log(System.Logger.Level.DEBUG, "removed {0} ONNX Runtime shutdown hook(s)", after.size());
        return created;
    }

    /** The registered application shutdown hooks, or null when the JDK does not let us see them. */
    @SuppressWarnings("unchecked")
    private static Set<Thread> hooks() {
        try {
            Class<?> c = Class.forName("java.lang.ApplicationShutdownHooks");
            Field f = c.getDeclaredField("hooks");
            f.setAccessible(true);
            synchronized (c) { // its methods are static synchronized
                Map<Thread, Thread> hooks = (Map<Thread, Thread>) f.get(null);
                return hooks == null ? null : new HashSet<>(hooks.keySet());
            }
        } catch (ReflectiveOperationException | RuntimeException e) { // InaccessibleObjectException included
            return null;
        }
    }
}
