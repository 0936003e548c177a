package org.sdserve.common.grpc;

import io.grpc.netty.shaded.io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.shaded.io.netty.handler.ssl.ClientAuth;
import io.grpc.netty.shaded.io.netty.handler.ssl.SslContext;
import io.grpc.netty.shaded.io.netty.handler.ssl.SslContextBuilder;
import java.io.File;
import java.util.Optional;
import javax.net.ssl.SSLException;

/**
 * TLS of one side of a gRPC link, from PEM files: a certificate chain and its PKCS#8 key (a server's, or a client's
 * for mutual TLS), and the CA that the peer's certificate must chain to (a client's trust; a server's to require
 * client certificates). Files are read when the server or channel starts; a bad file fails the start with its name.
 *
 * @param cert certificate chain (PEM), or null
 * @param key its private key (PEM, PKCS#8), or null
 * @param ca trusted CA (PEM), or null: a client then trusts the JVM's CAs, a server asks for no client certificate
 */
public record Tls(String cert, String key, String ca) {
    public Tls {
        if ((cert == null) != (key == null)) {
            throw new IllegalArgumentException("TLS needs both a certificate and its key, got " + (cert == null
                    ? "a key without a certificate" : "a certificate without a key"));
        }
    }

    /** From optional settings; empty when none is set (plaintext). */
    public static Optional<Tls> of(Optional<String> cert, Optional<String> key, Optional<String> ca) {
        if (cert.isEmpty() && key.isEmpty() && ca.isEmpty()) {
            return Optional.empty();
        }
        return Optional.of(new Tls(cert.orElse(null), key.orElse(null), ca.orElse(null)));
    }

    /** A server's context: its certificate, and with a CA, client certificates required (mutual TLS). */
    SslContext server() {
        if (cert == null) {
            throw new IllegalArgumentException("a TLS server needs a certificate and key (tls-cert, tls-key)");
        }
        try {
            SslContextBuilder b = GrpcSslContexts.configure(SslContextBuilder.forServer(file(cert), file(key)));
            if (ca != null) {
                b.trustManager(file(ca)).clientAuth(ClientAuth.REQUIRE);
            }
            return b.build();
        } catch (SSLException | IllegalArgumentException e) {
            throw new IllegalArgumentException("cannot use TLS files " + this + ": " + e.getMessage(), e);
        }
    }

    /** A client's context: trust the CA (else the JVM's), present the certificate when there is one (mutual TLS). */
    public SslContext client() {
        try {
            SslContextBuilder b = GrpcSslContexts.forClient();
            if (ca != null) {
                b.trustManager(file(ca));
            }
            if (cert != null) {
                b.keyManager(file(cert), file(key));
            }
            return b.build();
        } catch (SSLException | IllegalArgumentException e) {
            throw new IllegalArgumentException("cannot use TLS files " + this + ": " + e.getMessage(), e);
        }
    }

    private static File file(String path) {
        File f = new File(path);
        if (!f.canRead()) {
            throw new IllegalArgumentException("cannot read " + path);
        }
        return f;
    }
}
