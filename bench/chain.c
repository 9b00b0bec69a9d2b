// chain: the client of bench/pipeline.py's "two requests" row. A closed-loop load generator
// built like `registryd-bench load` (N keep-alive connections on one poll-driven thread, the
// next request sent as soon as the previous answer is complete, no strings built), except that
// each of its operations is two requests: the router, then the classifier the router chose,
// read from the router's answer. One latency is the whole operation, first byte sent to last
// byte of the second answer. registryd-bench cannot chain, and its Swift sources are not this
// benchmark's to change; with --single the same program sends one request per operation, so
// the benchmark can show that it measures a single model as registryd-bench does.
//
//   cc -O2 -o chain bench/chain.c
//   chain (--unix PATH | --tcp HOST:PORT) --first TARGET --body FILE [--case VALUE=TARGET]...
//         [--concurrency N] [--seconds S] [--warmup S] [--single]
//
// The router's answer is v2 JSON: the first integer of the data of its output "label" picks
// the case. Prints one JSON line: requests (operations), errors, throughput, p50_us, p99_us.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_CASES 16
#define MAX_CONN 256

static const char *unix_path, *tcp_host;
static int tcp_port;
static char *requests[MAX_CASES + 1];  // [0]: the first request; [1+i]: case i's request
static size_t lengths[MAX_CASES + 1];
static long case_values[MAX_CASES];
static int cases;

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void die(const char *why) {
    fprintf(stderr, "chain: %s\n", why);
    exit(64);
}

static char *build(const char *target, const char *body, size_t body_len, size_t *out_len) {
    char head[512];
    int n = snprintf(head, sizeof head, "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %zu\r\n\r\n", target, body_len);
    char *r = malloc((size_t)n + body_len);
    memcpy(r, head, (size_t)n);
    memcpy(r + n, body, body_len);
    *out_len = (size_t)n + body_len;
    return r;
}

static int connect_one(void) {
    int fd;
    if (unix_path) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        strncpy(a.sun_path, unix_path, sizeof a.sun_path - 1);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { if (fd >= 0) close(fd); return -1; }
    } else {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)tcp_port)};
        if (inet_pton(AF_INET, tcp_host, &a.sin_addr) != 1) die("bad --tcp host");
        fd = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { if (fd >= 0) close(fd); return -1; }
    }
    return fd;
}

struct conn {
    int fd, stage;  // stage 0: the first request; 1 + i: case i's
    size_t sent, filled, head_end, total;
    int status;
    uint64_t started;
    char buf[1 << 16];
};

// 1: a complete response in buf; 0: need more; -1: malformed.
static int parse(struct conn *c) {
    if (!c->head_end) {
        char *end = memmem(c->buf, c->filled, "\r\n\r\n", 4);
        if (!end) return c->filled >= sizeof c->buf ? -1 : 0;
        c->head_end = (size_t)(end - c->buf) + 4;
        if (c->filled < 12 || memcmp(c->buf, "HTTP/1.", 7) != 0) return -1;
        c->status = atoi(c->buf + 9);
        long length = -1;
        for (char *line = memchr(c->buf, '\n', c->head_end); line && (size_t)(line - c->buf) + 1 < c->head_end;
             line = memchr(line + 1, '\n', c->head_end - (size_t)(line + 1 - c->buf))) {
            if (strncasecmp(line + 1, "content-length:", 15) == 0) length = strtol(line + 16, NULL, 10);
            if (strncasecmp(line + 1, "transfer-encoding:", 18) == 0) return -1;
        }
        if (length < 0) return -1;
        c->total = c->head_end + (size_t)length;
        if (c->total > sizeof c->buf) return -1;
    }
    if (c->filled < c->total) return 0;
    return c->filled == c->total ? 1 : -1;
}

// The first integer of output "label"'s data in a v2 JSON answer; -1 when there is none.
static long label_of(struct conn *c) {
    char *body = c->buf + c->head_end, *end = c->buf + c->total;
    char *at = memmem(body, (size_t)(end - body), "\"label\"", 7);
    if (!at) return -1;
    char *data = memmem(at, (size_t)(end - at), "\"data\"", 6);
    if (!data) return -1;
    char *p = data + 6;
    while (p < end && (*p == ' ' || *p == ':' || *p == '[')) p++;
    if (p >= end || !((*p >= '0' && *p <= '9') || *p == '-')) return -1;
    return strtol(p, NULL, 10);
}

static int send_some(struct conn *c, struct pollfd *p) {
    const char *r = requests[c->stage];
    size_t len = lengths[c->stage];
    while (c->sent < len) {
        ssize_t n = send(c->fd, r + c->sent, len - c->sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) { c->sent += (size_t)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) break;
        return -1;
    }
    p->events = c->sent < len ? POLLOUT : POLLIN;
    return 0;
}

static long errors;
static char first_error[256];
static uint64_t measure_from;

// A failed operation: counted (when measured), its connection replaced, and started again.
static void restart(struct conn *c, struct pollfd *p, const char *why) {
    if (c->started >= measure_from) errors++;
    if (!first_error[0]) snprintf(first_error, sizeof first_error, "%s", why);
    close(c->fd);
    c->fd = p->fd = connect_one();
    if (c->fd < 0) die("reconnect failed");
    c->stage = 0;
    c->sent = c->filled = c->head_end = c->total = 0;
    c->started = now_ns();
    if (send_some(c, p) < 0) die("send failed after reconnecting");
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p) {
    if (!n) return -1;
    long i = (long)((p * (double)n) + 0.999999999) - 1;
    if (i < 0) i = 0;
    if ((size_t)i >= n) i = (long)n - 1;
    return v[i];
}

int main(int argc, char **argv) {
    const char *first = NULL, *body_path = NULL, *case_targets[MAX_CASES];
    int concurrency = 1, single = 0;
    double seconds = 10, warmup = 2;
    signal(SIGPIPE, SIG_IGN);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--single")) { single = 1; continue; }
        if (i + 1 >= argc) die("missing value");
        const char *v = argv[++i];
        if (!strcmp(a, "--unix")) unix_path = v;
        else if (!strcmp(a, "--tcp")) {
            const char *colon = strrchr(v, ':');
            if (!colon) die("--tcp HOST:PORT");
            tcp_host = strndup(v, (size_t)(colon - v));
            tcp_port = atoi(colon + 1);
        } else if (!strcmp(a, "--first")) first = v;
        else if (!strcmp(a, "--body")) body_path = v;
        else if (!strcmp(a, "--case")) {
            const char *eq = strchr(v, '=');
            if (!eq || cases == MAX_CASES) die("--case VALUE=TARGET");
            case_values[cases] = strtol(v, NULL, 10);
            case_targets[cases++] = eq + 1;
        } else if (!strcmp(a, "--concurrency")) concurrency = atoi(v);
        else if (!strcmp(a, "--seconds")) seconds = atof(v);
        else if (!strcmp(a, "--warmup")) warmup = atof(v);
        else die("unknown option");
    }
    if ((!unix_path && !tcp_host) || !first || !body_path || concurrency < 1 || concurrency > MAX_CONN) die("usage: see bench/chain.c");
    if (!single && !cases) die("--case VALUE=TARGET is needed unless --single");
    FILE *f = fopen(body_path, "rb");
    if (!f) die("cannot read --body");
    static char body[1 << 20];
    size_t body_len = fread(body, 1, sizeof body, f);
    fclose(f);
    requests[0] = build(first, body, body_len, &lengths[0]);
    for (int i = 0; i < cases; i++) requests[1 + i] = build(case_targets[i], body, body_len, &lengths[1 + i]);

    struct conn *conns = calloc((size_t)concurrency, sizeof *conns);
    struct pollfd polls[MAX_CONN];
    size_t cap = 1 << 20, count = 0;
    double *lat = malloc(cap * sizeof *lat);
    uint64_t begin = now_ns(), end;
    measure_from = begin + (uint64_t)(warmup * 1e9);
    end = measure_from + (uint64_t)(seconds * 1e9);
    for (int i = 0; i < concurrency; i++) {
        conns[i].fd = connect_one();
        if (conns[i].fd < 0) die("connect failed");
        polls[i] = (struct pollfd){.fd = conns[i].fd};
        conns[i].started = now_ns();
        if (send_some(&conns[i], &polls[i]) < 0) die("send failed");
    }
    uint64_t t = now_ns();
    while (t < end) {
        int wait = (int)((end - t) / 1000000);
        poll(polls, (nfds_t)concurrency, wait < 1 ? 1 : wait > 100 ? 100 : wait);
        t = now_ns();
        for (int i = 0; i < concurrency; i++) {
            struct conn *c = &conns[i];
            short ev = polls[i].revents;
            polls[i].revents = 0;
            if (!ev) continue;
            if (c->sent < lengths[c->stage]) { if (send_some(c, &polls[i]) < 0) restart(c, &polls[i], "send failed"); continue; }
            ssize_t n = recv(c->fd, c->buf + c->filled, sizeof c->buf - c->filled, MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (n <= 0) { restart(c, &polls[i], n == 0 ? "connection closed by the server" : "recv failed"); continue; }
            c->filled += (size_t)n;
            int r = parse(c);
            if (r == 0) continue;
            if (r < 0) { restart(c, &polls[i], "malformed response"); continue; }
            if (c->status != 200) {
                char why[200];
                snprintf(why, sizeof why, "HTTP %d: %.*s", c->status, (int)(c->total - c->head_end > 120 ? 120 : c->total - c->head_end), c->buf + c->head_end);
                restart(c, &polls[i], why);
                continue;
            }
            int next_stage = 0;
            if (!single && c->stage == 0) {
                long value = label_of(c);
                for (int k = 0; k < cases; k++) if (case_values[k] == value) next_stage = 1 + k;
                if (!next_stage) { restart(c, &polls[i], "the first answer's label has no case"); continue; }
            }
            uint64_t done = now_ns();
            if (!next_stage) {
                if (c->started >= measure_from) {
                    if (count == cap) lat = realloc(lat, (cap *= 2) * sizeof *lat);
                    lat[count++] = (double)(done - c->started) / 1000.0;
                }
                c->started = done;
            }
            c->stage = next_stage;
            c->sent = c->filled = c->head_end = c->total = 0;
            if (done < end && send_some(c, &polls[i]) < 0) { restart(c, &polls[i], "send failed"); continue; }
        }
    }
    for (int i = 0; i < concurrency; i++) close(conns[i].fd);
    qsort(lat, count, sizeof *lat, cmp);
    printf("{\"kind\":\"chain\",\"concurrency\":%d,\"single\":%s,\"seconds\":%g,\"requests\":%zu,\"errors\":%ld,\"throughput\":%.3f,\"p50_us\":%.3f,\"p99_us\":%.3f",
           concurrency, single ? "true" : "false", seconds, count, errors, (double)count / seconds, pct(lat, count, 0.5), pct(lat, count, 0.99));
    if (first_error[0]) {
        printf(",\"first_error\":\"");
        for (char *p = first_error; *p; p++) putchar(*p == '"' || *p == '\\' || (unsigned char)*p < 32 ? ' ' : *p);
        putchar('"');
    }
    printf("}\n");
    return 0;
}
