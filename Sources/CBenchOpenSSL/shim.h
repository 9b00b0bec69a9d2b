// The client side of TLS for registryd-bench's load generator alone (the daemon reaches OpenSSL
// through COpenSSL, imported by Registry only): each C module has one Swift importer.
#include <openssl/ssl.h>
#include <openssl/err.h>

// SSL_CTX_set_read_ahead is a macro (an SSL_CTX_ctrl call) that Swift cannot import.
static inline long registryd_bench_SSL_CTX_set_read_ahead(SSL_CTX *ctx, long yes) {
    return SSL_CTX_set_read_ahead(ctx, yes);
}
