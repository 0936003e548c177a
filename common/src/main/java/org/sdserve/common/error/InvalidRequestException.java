package org.sdserve.common.error;

/** The caller sent something outside the contract; the message says what was expected. Maps to INVALID_ARGUMENT. */
public final class InvalidRequestException extends RuntimeException {
    public InvalidRequestException(String message) {
        super(message);
    }

    /**
     * A client's text as a message may quote it: whole up to 64 characters, else its first 64 and its length (an
     * echoed 9,000-character field made HTTP/2 reset the stream).
     */
    public static String shown(String text) {
        return text.length() <= 64 ? text : text.substring(0, 64) + "... (" + text.length() + " characters)";
    }

    /** Throws unless {@code condition}; the message is formatted only on failure. */
    public static void require(boolean condition, String format, Object... args) {
        if (!condition) {
            throw new InvalidRequestException(String.format(java.util.Locale.ROOT, format, args));
        }
    }
}
