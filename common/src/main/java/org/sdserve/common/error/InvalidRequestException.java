package org.sdserve.common.error;

/** The caller sent something outside the contract; the message says what was expected. Maps to INVALID_ARGUMENT. */
public final class InvalidRequestException extends RuntimeException {
    public InvalidRequestException(String message) {
        super(message);
    }

    /** Throws unless {@code condition}; the message is formatted only on failure. */
    public static void require(boolean condition, String format, Object... args) {
        if (!condition) {
            throw new InvalidRequestException(String.format(java.util.Locale.ROOT, format, args));
        }
    }
}
