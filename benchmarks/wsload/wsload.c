/*
 * wsload - a cheap WebSocket load client for the benchmarks.
 *
 * One process, one thread, one epoll loop holding N client connections
 * (RFC 6455; permessage-deflate, RFC 7692, on the receive side only). It
 * measures how fast connections become "ready" and the latency of timestamps
 * carried in received messages. A Python orchestrator drives it: it connects
 * at startup, prints {"event":"ready",...} once every connection is ready or
 * failed, one {"event":"stats",...} line per "stats" line on stdin (interval
 * counters reset each time), and exits on "quit" or stdin EOF. smoke.py in
 * this directory exercises all of it.
 *
 * Build: cc -O2 -Wall -Wextra -o wsload wsload.c -lz
 *
 * Cost notes (the client must cost far less CPU than the server):
 *  - socket reads go into one shared buffer; only the tail of an incomplete
 *    frame is copied into the connection, so an idle connection owns ~100 B;
 *    inflate output goes into one shared buffer too;
 *  - sockets are edge-triggered and registered once (no epoll_ctl later);
 *  - per message: memmem() for the time key / ready marker and a hand-written
 *    timestamp parser (no mktime, no strtod). What remains is kernel time:
 *    one read() per arrival plus the ACK Linux sends when a read drains a
 *    small pushed segment; on loopback that ACK is processed in our context.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define READ_CHUNK   (64 * 1024)
#define MAX_MSG      (64u << 20)      /* refuse frames/messages above 64 MiB */
#define MAX_HTTP     16384            /* refuse 101 responses above 16 KiB */
#define LAT_RES_NS   10000            /* 10 us buckets ... */
#define LAT_BUCKETS  1000000          /* ... up to 10 s, +1 overflow bucket */
#define STDIN_TAG    UINT64_MAX
#define MAX_KV       64

enum { ST_IDLE, ST_CONNECTING, ST_HTTP, ST_OPEN, ST_DONE };

typedef struct {
    int fd;
    uint8_t state, ready, offer, deflate, srv_no_ctx, in_msg, msg_z;
    uint32_t markers;                  /* ready-marker occurrences so far */
    uint32_t need;                     /* size of the incomplete frame, if known */
    int64_t t_start;                   /* monotonic ns at connect() */
    char *pend; uint32_t plen, pcap;   /* unparsed bytes kept for the next read */
    char *msg;  uint32_t mlen, mcap;   /* fragments of a message in progress */
    char *wbuf; uint32_t wlen, woff;   /* output the socket did not take yet */
    z_stream *z;
} conn_t;

typedef struct { int key; uint64_t n; } kv_t;
typedef struct { kv_t kv[MAX_KV]; int n; } kvmap_t;

/* ---- options ---- */
static const char *o_host = "127.0.0.1", *o_path = "/ws";
static int o_port = 8000, o_clients = 1000, o_sources = 1, o_conc = 256;
static double o_share = 0.0;
static char **o_send; static int o_nsend;
static char **o_lines; static int o_nlines;  /* --send-file: connection i sends line i % n first */
static char **o_hdr;  static int o_nhdr;
static const char *o_marker; static size_t o_marker_len; static uint32_t o_ready_count = 1;
/* --reply-on STR --reply TEXT: an application-level heartbeat (e.g. Hub's {"type":"ping"},
 * answered with {"action":"pong"}): a long run would otherwise be closed as idle. */
static const char *o_reply_on, *o_reply; static size_t o_reply_on_len;
static const char *o_key = "\"timestamp\":\""; static size_t o_key_len;

/* ---- global state ---- */
static int ep;
static conn_t *conns;
static struct sockaddr_in dst;
static int next_conn, inflight, open_now, ready_now, ready_total, failed, deflate_ok;
static int ready_printed, quitting;
static int64_t t0, t_last_ready;
static float *ready_ms;                 /* connect -> ready, per ready connection */
static kvmap_t statuses;
static uint64_t diag_left = 20;         /* rate-limit stderr diagnostics */

static char *rbuf; static size_t rcap;  /* shared socket read buffer */
static char *zbuf; static size_t zcap;  /* shared inflate output */
static char *sbuf; static size_t scap;  /* shared scratch for outgoing bytes */

/* interval counters, reset by every "stats" (and once at the ready event) */
static struct {
    uint64_t messages, deliveries, bytes, wire, inflated, replies, closed_by_server, errors;
    kvmap_t close_codes;
    uint64_t lat_n; int64_t lat_max;
    int64_t t; struct rusage ru;
} iv;
static uint32_t *lat;                   /* LAT_BUCKETS + 1 counters */

static uint64_t rng_state;
static uint32_t rnd32(void)
{   /* xorshift64*: masking keys only need to be unpredictable-ish, not secure */
    rng_state ^= rng_state >> 12; rng_state ^= rng_state << 25; rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (!p) { fprintf(stderr, "wsload: out of memory\n"); exit(2); }
    return p;
}

static void grow(char **buf, size_t *cap, size_t need)
{
    if (*cap >= need) return;
    size_t n = *cap ? *cap : 4096;
    while (n < need) n *= 2;
    *buf = xrealloc(*buf, n);
    *cap = n;
}

static void kv_add(kvmap_t *m, int key)
{
    for (int i = 0; i < m->n; i++)
        if (m->kv[i].key == key) { m->kv[i].n++; return; }
    if (m->n < MAX_KV) { m->kv[m->n].key = key; m->kv[m->n++].n = 1; }
}

static void kv_print(const kvmap_t *m)
{
    putchar('{');
    for (int i = 0; i < m->n; i++)
        printf("%s\"%d\":%llu", i ? "," : "", m->kv[i].key, (unsigned long long)m->kv[i].n);
    putchar('}');
}

/* ------------------------------------------------------------------ */
/* timestamps                                                         */

static int digits(const char *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return 0;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 1;
}

/* Howard Hinnant's days_from_civil: timegm arithmetic without libc calls. */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int yoe = (int)(y - era * 400);
    int doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Fractional digits after '.', as nanoseconds; digits past the 9th are skipped. */
static const char *parse_frac(const char *p, const char *end, int64_t *ns)
{
    int64_t v = 0; int n = 0;
    for (; p < end && *p >= '0' && *p <= '9'; p++)
        if (n < 9) { v = v * 10 + (*p - '0'); n++; }
    while (n++ < 9) v *= 10;
    *ns = v;
    return p;
}

/* "2026-11-29T13:40:00.123456Z" / "+00:00" / "+hh:mm" / no zone (= UTC), or
 * a bare number of epoch seconds "1764423600.123456". */
static int parse_ts(const char *p, const char *end, int64_t *out)
{
    /* tolerate json.dumps()' space after ':' and a key given without the quote */
    while (p < end && *p == ' ') p++;
    if (p < end && *p == '"') p++;
    int Y, M, D, h, mi, s;
    if (end - p >= 19 && digits(p, 4, &Y) && p[4] == '-' && digits(p + 5, 2, &M) &&
        p[7] == '-' && digits(p + 8, 2, &D) && (p[10] == 'T' || p[10] == ' ') &&
        digits(p + 11, 2, &h) && p[13] == ':' && digits(p + 14, 2, &mi) &&
        p[16] == ':' && digits(p + 17, 2, &s)) {
        const char *q = p + 19;
        int64_t frac = 0, off = 0;
        if (q < end && *q == '.') q = parse_frac(q + 1, end, &frac);
        int oh, om;
        if (end - q >= 6 && (*q == '+' || *q == '-') && digits(q + 1, 2, &oh) &&
            q[3] == ':' && digits(q + 4, 2, &om))
            off = (*q == '-' ? -1 : 1) * (oh * 3600 + om * 60);
        int64_t secs = days_from_civil(Y, M, D) * 86400 + h * 3600 + mi * 60 + s - off;
        *out = secs * 1000000000LL + frac;
        return 1;
    }
    if (p < end && *p >= '0' && *p <= '9') {
        int64_t secs = 0, frac = 0; int n = 0;
        for (; p < end && *p >= '0' && *p <= '9' && n < 12; p++, n++) secs = secs * 10 + (*p - '0');
        if (p < end && *p == '.') parse_frac(p + 1, end, &frac);
        *out = secs * 1000000000LL + frac;
        return 1;
    }
    return 0;
}

static void lat_add(int64_t d)
{
    if (d < 0) d = 0;
    int64_t b = d / LAT_RES_NS;
    lat[b > LAT_BUCKETS ? LAT_BUCKETS : b]++;
    iv.lat_n++;
    if (d > iv.lat_max) iv.lat_max = d;
}

static void iv_reset(void)
{
    memset(&iv, 0, sizeof iv);
    memset(lat, 0, (LAT_BUCKETS + 1) * sizeof *lat);
    iv.t = clock_ns(CLOCK_MONOTONIC);
    getrusage(RUSAGE_SELF, &iv.ru);
}

/* ------------------------------------------------------------------ */
/* connection lifecycle                                               */

static void start_more(void);
static void print_ready(void);

static void check_done(void)
{
    if (!ready_printed && ready_total + failed == o_clients) print_ready();
}

/* Every way out ends here: server close, protocol/socket error, HTTP status. */
static void conn_close(conn_t *c, int is_err, const char *why)
{
    if (c->state == ST_DONE || c->state == ST_IDLE) return;
    if (is_err) {
        iv.errors++;
        if (diag_left && !quitting) {
            diag_left--;
            fprintf(stderr, "wsload: conn %d: %s%s\n", (int)(c - conns), why,
                    diag_left ? "" : " (further diagnostics suppressed)");
        }
    }
    if (c->fd >= 0) close(c->fd);
    if (c->state == ST_OPEN) open_now--;
    if (c->ready) ready_now--;
    else { failed++; inflight--; }
    free(c->pend); free(c->msg); free(c->wbuf);
    if (c->z) { inflateEnd(c->z); free(c->z); }
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->state = ST_DONE;  /* conn_close() on a done connection is a no-op */
    if (!quitting) { start_more(); check_done(); }
}

/* Send now, or queue what the socket does not take; the EPOLLOUT edge that
 * follows a short write flushes it (on_writable). */
static int conn_send(conn_t *c, const char *p, size_t n)
{
    if (c->wlen == c->woff) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno != EAGAIN) { conn_close(c, 1, strerror(errno)); return 0; }
            w = 0;
        }
        if ((size_t)w == n) return 1;
        p += w; n -= (size_t)w;
        c->wlen = c->woff = 0;
    }
    c->wbuf = xrealloc(c->wbuf, c->wlen + n);
    memcpy(c->wbuf + c->wlen, p, n);
    c->wlen += (uint32_t)n;
    return 1;
}

/* Client frames must be masked (RFC 6455 5.3); they are never compressed. */
static size_t build_frame(char *out, int op, const char *p, size_t n)
{
    unsigned char *o = (unsigned char *)out;
    size_t h = 2;
    o[0] = (unsigned char)(0x80 | op);
    if (n < 126) o[1] = (unsigned char)(0x80 | n);
    else if (n < 65536) { o[1] = 0x80 | 126; o[2] = (unsigned char)(n >> 8); o[3] = (unsigned char)n; h = 4; }
    else { o[1] = 0x80 | 127; for (int i = 0; i < 8; i++) o[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i)); h = 10; }
    uint32_t k = rnd32();
    unsigned char mk[4];
    memcpy(mk, &k, 4);
    memcpy(o + h, mk, 4);
    for (size_t i = 0; i < n; i++) o[h + 4 + i] = (unsigned char)p[i] ^ mk[i & 3];
    return h + 4 + n;
}

static int send_frame(conn_t *c, int op, const char *p, size_t n)
{
    grow(&sbuf, &scap, n + 14);
    return conn_send(c, sbuf, build_frame(sbuf, op, p, n));
}

static void set_ready(conn_t *c)
{
    int64_t now = clock_ns(CLOCK_MONOTONIC);
    c->ready = 1;
    ready_now++;
    inflight--;
    ready_ms[ready_total++] = (float)((now - c->t_start) / 1e6);
    t_last_ready = now;
    start_more();
    check_done();
}

static void on_connected(conn_t *c)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char k[18] = {0};
    char key[25];
    for (int i = 0; i < 16; i += 4) { uint32_t r = rnd32(); memcpy(k + i, &r, 4); }
    for (int i = 0, j = 0; i < 18; i += 3) {  /* 16 bytes -> 22 chars + "==" */
        uint32_t v = (uint32_t)k[i] << 16 | (uint32_t)k[i + 1] << 8 | k[i + 2];
        key[j++] = b64[v >> 18]; key[j++] = b64[(v >> 12) & 63];
        key[j++] = b64[(v >> 6) & 63]; key[j++] = b64[v & 63];
    }
    key[22] = key[23] = '='; key[24] = 0;

    size_t need = 512 + strlen(o_path) + strlen(o_host);
    for (int i = 0; i < o_nhdr; i++) need += strlen(o_hdr[i]) + 2;
    grow(&sbuf, &scap, need);
    int n = sprintf(sbuf, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n",
                    o_path, o_host, o_port, key);
    if (c->offer)
        n += sprintf(sbuf + n, "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n");
    for (int i = 0; i < o_nhdr; i++) n += sprintf(sbuf + n, "%s\r\n", o_hdr[i]);
    n += sprintf(sbuf + n, "\r\n");
    c->state = ST_HTTP;
    conn_send(c, sbuf, (size_t)n);
}

static void start_conn(conn_t *c)
{
    int i = (int)(c - conns);
    c->fd = -1;
    c->state = ST_CONNECTING;
    c->t_start = clock_ns(CLOCK_MONOTONIC);
    c->offer = o_share > 0 && (long)((i + 1) * o_share) > (long)(i * o_share);
    inflight++;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) { conn_close(c, 1, strerror(errno)); return; }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (o_sources > 1) {
        /* Without NO_PORT, bind() picks the port before the destination is
         * known and each source address would still be capped at ~28k. */
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        struct sockaddr_in src = { .sin_family = AF_INET };
        src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(i % o_sources));
        if (bind(c->fd, (struct sockaddr *)&src, sizeof src) < 0) {
            conn_close(c, 1, strerror(errno)); return;
        }
    }
    /* Edge-triggered, registered once: no epoll_ctl per state change, and no
     * re-poll of every readable socket on each epoll_wait as level-triggered does. */
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLET, .data.u64 = (uint64_t)i };
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    if (connect(c->fd, (struct sockaddr *)&dst, sizeof dst) == 0) on_connected(c);
    else if (errno != EINPROGRESS) conn_close(c, 1, strerror(errno));
}

static void start_more(void)
{
    static int busy;  /* start_conn may fail and re-enter via conn_close */
    if (busy) return;
    busy = 1;
    while (inflight < o_conc && next_conn < o_clients) start_conn(&conns[next_conn++]);
    busy = 0;
}

/* ------------------------------------------------------------------ */
/* receive path                                                       */

static const unsigned char deflate_tail[4] = { 0x00, 0x00, 0xff, 0xff };

static int zfeed(z_stream *z, const unsigned char *in, size_t n)
{
    z->next_in = (unsigned char *)in;
    z->avail_in = (uInt)n;
    do {
        if (z->avail_out == 0) {
            size_t used = zcap;
            if (zcap >= MAX_MSG) return 0;
            grow(&zbuf, &zcap, zcap * 2);
            z->next_out = (unsigned char *)zbuf + used;
            z->avail_out = (uInt)(zcap - used);
        }
        int r = inflate(z, Z_SYNC_FLUSH);
        if (r == Z_STREAM_END) { inflateReset(z); z->avail_in = 0; break; }  /* BFINAL block */
        if (r != Z_OK && r != Z_BUF_ERROR) return 0;
        if (r == Z_BUF_ERROR && z->avail_out > 0) break;  /* no progress possible */
    } while (z->avail_in > 0 || z->avail_out == 0);
    return 1;
}

/* A complete text/binary message: count it, find the timestamps. */
static int deliver(conn_t *c, int compressed, const char *p, size_t n)
{
    if (compressed) {
        z_stream *z = c->z;
        z->next_out = (unsigned char *)zbuf;
        z->avail_out = (uInt)zcap;
        if (!zfeed(z, (const unsigned char *)p, n) || !zfeed(z, deflate_tail, 4)) {
            conn_close(c, 1, "inflate failed");
            return 0;
        }
        n = zcap - z->avail_out;
        p = zbuf;
        if (c->srv_no_ctx) inflateReset(z);
        iv.inflated++;
    }
    iv.messages++;
    iv.bytes += n;
    const char *end = p + n, *q = p;
    int64_t now = 0, ts;
    while ((q = memmem(q, (size_t)(end - q), o_key, o_key_len)) != NULL) {
        q += o_key_len;
        iv.deliveries++;
        if (!now) now = clock_ns(CLOCK_REALTIME);  /* once per message is precise enough */
        if (parse_ts(q, end, &ts)) lat_add(now - ts);
    }
    if (!c->ready && o_marker) {
        for (q = p; (q = memmem(q, (size_t)(end - q), o_marker, o_marker_len)) != NULL; q += o_marker_len)
            c->markers++;
        if (c->markers >= o_ready_count) set_ready(c);
    }
    if (o_reply_on && memmem(p, n, o_reply_on, o_reply_on_len)) {
        iv.replies++;
        if (!send_frame(c, 0x1, o_reply, strlen(o_reply))) return 0;
    }
    return 1;
}

/* Returns 0 once the connection is gone. */
static int on_frame(conn_t *c, unsigned b0, const char *p, size_t n)
{
    int fin = b0 & 0x80, rsv1 = (b0 & 0x40) != 0, op = b0 & 0x0f;
    switch (op) {
    case 0x9:  /* ping: a missing pong gets us disconnected by most servers */
        return send_frame(c, 0xA, p, n);
    case 0xA:
        return 1;
    case 0x8: {
        int code = n >= 2 ? ((unsigned char)p[0] << 8 | (unsigned char)p[1]) : 1005;
        kv_add(&iv.close_codes, code);
        iv.closed_by_server++;
        send_frame(c, 0x8, p, n >= 2 ? 2 : 0);
        conn_close(c, 0, "closed by server");
        return 0;
    }
    case 0x1: case 0x2:
        if (c->in_msg) break;
        if (rsv1 && !c->deflate) break;
        if (fin) return deliver(c, rsv1, p, n);
        c->in_msg = 1;
        c->msg_z = (uint8_t)rsv1;
        /* fall through */
    case 0x0:
        if (!c->in_msg) break;
        if (c->mlen + n > MAX_MSG) break;
        if (c->mlen + n > c->mcap) {
            size_t cap = c->mcap;
            grow(&c->msg, &cap, c->mlen + n);
            c->mcap = (uint32_t)cap;
        }
        memcpy(c->msg + c->mlen, p, n);
        c->mlen += (uint32_t)n;
        if (!fin) return 1;
        c->in_msg = 0;
        int ok = deliver(c, c->msg_z, c->msg, c->mlen);
        if (ok) { free(c->msg); c->msg = NULL; c->mlen = c->mcap = 0; }
        return ok;
    }
    conn_close(c, 1, "protocol error in frame");
    return 0;
}

/* Parses whole frames; returns bytes consumed or SIZE_MAX if the connection closed. */
static size_t parse_frames(conn_t *c, const char *buf, size_t len)
{
    size_t off = 0;
    c->need = 0;
    while (len - off >= 2) {
        const unsigned char *h = (const unsigned char *)buf + off;
        uint64_t n = h[1] & 0x7f;
        size_t hl = 2;
        if (h[1] & 0x80) { conn_close(c, 1, "masked server frame"); return SIZE_MAX; }
        if (n == 126) {
            if (len - off < 4) break;
            n = (uint64_t)h[2] << 8 | h[3]; hl = 4;
        } else if (n == 127) {
            if (len - off < 10) break;
            n = 0; for (int i = 0; i < 8; i++) n = n << 8 | h[2 + i];
            hl = 10;
        }
        if (n > MAX_MSG) { conn_close(c, 1, "frame too large"); return SIZE_MAX; }
        if (len - off - hl < n) { c->need = (uint32_t)(hl + n); break; }
        if (!on_frame(c, h[0], buf + off + hl, (size_t)n)) return SIZE_MAX;
        off += hl + (size_t)n;
    }
    return off;
}

/* Status line and Sec-WebSocket-Extensions; anything but 101 fails the connection. */
static int on_http(conn_t *c, char *h, size_t n)
{
    int code = 0;
    if (n < 12 || memcmp(h, "HTTP/1.", 7) || !digits(h + 9, 3, &code)) {
        conn_close(c, 1, "bad HTTP response");
        return 0;
    }
    kv_add(&statuses, code);
    if (code != 101) {
        char why[64];
        snprintf(why, sizeof why, "HTTP status %d", code);
        conn_close(c, 1, why);
        return 0;
    }
    int bits = 15;
    h[n - 1] = 0;  /* the final '\n' of "\r\n\r\n"; makes the block a C string */
    for (char *line = strstr(h, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
        char *v = line + 2;
        if (strncasecmp(v, "Sec-WebSocket-Extensions:", 25)) continue;
        char *eol = strstr(v, "\r\n"), save = *eol, *ext, *s1, *s2;
        *eol = 0;
        for (ext = strtok_r(v + 25, ",", &s1); ext; ext = strtok_r(NULL, ",", &s1)) {
            char *tok = strtok_r(ext, "; \t", &s2);
            if (!tok || strcasecmp(tok, "permessage-deflate")) continue;
            c->deflate = 1;
            while ((tok = strtok_r(NULL, "; \t", &s2)) != NULL) {
                if (!strcasecmp(tok, "server_no_context_takeover")) c->srv_no_ctx = 1;
                else if (!strncasecmp(tok, "server_max_window_bits=", 23)) {
                    int b = atoi(tok + 23 + (tok[23] == '"'));
                    if (b >= 8 && b <= 15) bits = b < 9 ? 9 : b;  /* zlib raw inflate wants >= 9 */
                }
                /* client_no_context_takeover / client_max_window_bits only
                 * constrain our compressor, and we never compress. */
            }
        }
        *eol = save;
    }
    c->state = ST_OPEN;
    open_now++;
    if (c->deflate) {
        deflate_ok++;
        c->z = calloc(1, sizeof *c->z);
        if (!c->z || inflateInit2(c->z, -bits) != Z_OK) {
            conn_close(c, 1, "inflateInit2 failed");
            return 0;
        }
    }
    size_t need = 0, off = 0;
    const char *own = o_nlines ? o_lines[(c - conns) % o_nlines] : NULL;
    if (own) need += strlen(own) + 14;
    for (int i = 0; i < o_nsend; i++) need += strlen(o_send[i]) + 14;
    if (need) {  /* one send() for all of them */
        grow(&sbuf, &scap, need);
        if (own) off += build_frame(sbuf + off, 0x1, own, strlen(own));
        for (int i = 0; i < o_nsend; i++)
            off += build_frame(sbuf + off, 0x1, o_send[i], strlen(o_send[i]));
        if (!conn_send(c, sbuf, off)) return 0;
    }
    if (!o_marker) set_ready(c);
    return 1;
}

static void on_readable(conn_t *c)
{
    for (;;) {  /* edge-triggered: read until a short read shows the queue is empty */
        size_t want = READ_CHUNK;
        if (c->need > c->plen && c->need - c->plen > want) want = c->need - c->plen;
        grow(&rbuf, &rcap, c->plen + want);
        if (c->plen) memcpy(rbuf, c->pend, c->plen);
        size_t room = rcap - c->plen;
        ssize_t r = read(c->fd, rbuf + c->plen, room);
        if (r == 0) { conn_close(c, 1, "EOF without close frame"); return; }
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) conn_close(c, 1, strerror(errno));
            return;
        }
        iv.wire += (uint64_t)r;
        size_t len = c->plen + (size_t)r, off = 0;
        if (c->state == ST_HTTP) {
            char *e = memmem(rbuf, len, "\r\n\r\n", 4);
            if (!e && len > MAX_HTTP) { conn_close(c, 1, "HTTP response too large"); return; }
            if (e) {
                off = (size_t)(e - rbuf) + 4;
                if (!on_http(c, rbuf, off)) return;
            }
        }
        if (c->state == ST_OPEN) {
            size_t used = parse_frames(c, rbuf + off, len - off);
            if (used == SIZE_MAX) return;
            off += used;
        }
        /* keep the incomplete tail; drop big buffers once they are not needed */
        size_t rest = len - off;
        if (rest > c->pcap || (rest == 0 && c->pcap > 16384)) {
            free(c->pend);
            c->pend = rest ? xrealloc(NULL, rest) : NULL;
            c->pcap = (uint32_t)rest;
        }
        if (rest) memcpy(c->pend, rbuf + off, rest);
        c->plen = (uint32_t)rest;
        if ((size_t)r < room) return;
    }
}

static void on_writable(conn_t *c)
{
    if (c->state == ST_CONNECTING) {
        int err = 0; socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) conn_close(c, 1, strerror(err));
        else on_connected(c);
        return;
    }
    while (c->woff < c->wlen) {
        ssize_t w = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno != EAGAIN) conn_close(c, 1, strerror(errno));
            return;
        }
        c->woff += (uint32_t)w;
    }
    free(c->wbuf); c->wbuf = NULL; c->wlen = c->woff = 0;
}

/* ------------------------------------------------------------------ */
/* reporting and control                                              */

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void print_ready(void)
{
    int64_t end = ready_total ? t_last_ready : clock_ns(CLOCK_MONOTONIC);
    ready_printed = 1;
    qsort(ready_ms, (size_t)ready_total, sizeof *ready_ms, cmp_float);
    float p50 = 0, p90 = 0, p99 = 0, mx = 0;
    if (ready_total) {
        p50 = ready_ms[(ready_total - 1) / 2]; p90 = ready_ms[(ready_total - 1) * 9 / 10];
        p99 = ready_ms[(ready_total - 1) * 99 / 100]; mx = ready_ms[ready_total - 1];
    }
    printf("{\"event\":\"ready\",\"ready\":%d,\"failed\":%d,\"elapsed_s\":%.3f,\"deflate_accepted\":%d,"
           "\"errors\":%llu,\"connect_ms\":{\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f,\"max\":%.2f},\"statuses\":",
           ready_total, failed, (end - t0) / 1e9, deflate_ok, (unsigned long long)iv.errors,
           p50, p90, p99, mx);
    kv_print(&statuses);
    printf("}\n");
    fflush(stdout);
    iv_reset();  /* measurement intervals start at "ready" */
}

static double tv_s(struct timeval a, struct timeval b)
{
    return (double)(a.tv_sec - b.tv_sec) + (a.tv_usec - b.tv_usec) / 1e6;
}

static void print_stats(void)
{
    static const double qs[4] = { 0.50, 0.90, 0.99, 0.999 };
    double pv[4] = { 0, 0, 0, 0 };
    uint64_t cum = 0; int j = 0;
    for (int b = 0; b <= LAT_BUCKETS && j < 4 && iv.lat_n; b++) {
        cum += lat[b];
        while (j < 4 && cum > 0 && (double)cum >= qs[j] * (double)iv.lat_n) {
            /* upper edge of the bucket, but never above the exact maximum */
            int64_t v = b == LAT_BUCKETS ? iv.lat_max : (int64_t)(b + 1) * LAT_RES_NS;
            pv[j++] = (v < iv.lat_max ? v : iv.lat_max) / 1e6;
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long rss = 0, pages;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) { if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0; fclose(f); }
    int64_t now = clock_ns(CLOCK_MONOTONIC);
    printf("{\"event\":\"stats\",\"interval_s\":%.3f,\"messages\":%llu,\"deliveries\":%llu,"
           "\"bytes\":%llu,\"wire_bytes\":%llu,\"inflated\":%llu,\"replies\":%llu,"
           "\"lat_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f,\"n\":%llu},"
           "\"open\":%d,\"ready\":%d,\"closed_by_server\":%llu,\"close_codes\":",
           (now - iv.t) / 1e9, (unsigned long long)iv.messages, (unsigned long long)iv.deliveries,
           (unsigned long long)iv.bytes, (unsigned long long)iv.wire, (unsigned long long)iv.inflated,
           (unsigned long long)iv.replies,
           pv[0], pv[1], pv[2], pv[3], iv.lat_max / 1e6, (unsigned long long)iv.lat_n,
           open_now, ready_now, (unsigned long long)iv.closed_by_server);
    kv_print(&iv.close_codes);
    printf(",\"errors\":%llu,\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,\"rss_kib\":%ld}\n",
           (unsigned long long)iv.errors, tv_s(ru.ru_utime, iv.ru.ru_utime),
           tv_s(ru.ru_stime, iv.ru.ru_stime), rss * (sysconf(_SC_PAGESIZE) / 1024));
    fflush(stdout);
    iv_reset();
}

static void quit(void)
{
    quitting = 1;
    for (int i = 0; i < o_clients; i++) conn_close(&conns[i], 0, "quit");
    exit(0);
}

static void on_stdin(void)
{
    static char line[4096];
    static size_t len;
    ssize_t r = read(0, line + len, sizeof line - len);
    if (r == 0) quit();
    if (r < 0) { if (errno != EAGAIN && errno != EINTR) quit(); return; }
    len += (size_t)r;
    char *nl;
    while ((nl = memchr(line, '\n', len)) != NULL) {
        size_t l = (size_t)(nl - line);
        while (l && (line[l - 1] == '\r' || line[l - 1] == ' ')) l--;
        if (l == 5 && !memcmp(line, "stats", 5)) print_stats();
        else if (l == 4 && !memcmp(line, "quit", 4)) quit();
        else if (l) fprintf(stderr, "wsload: unknown command '%.*s'\n", (int)l, line);
        len -= (size_t)(nl + 1 - line);
        memmove(line, nl + 1, len);
    }
    if (len == sizeof line) len = 0;  /* absurdly long line: drop it */
}

/* One message per line (e.g. a per-user auth frame); empty lines are skipped. */
static void load_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) { perror(path); exit(2); }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (!n) continue;
        o_lines = xrealloc(o_lines, (size_t)(o_nlines + 1) * sizeof *o_lines);
        o_lines[o_nlines++] = strdup(line);
    }
    free(line);
    fclose(f);
}

static void usage(void)
{
    fprintf(stderr,
        "usage: wsload --host H --port P --path /ws --clients N [--sources S] [--concurrency C]\n"
        "              [--deflate-share F] [--send-file FILE] [--send TEXT]... [--ready-marker STR]\n"
        "              [--ready-count K] [--reply-on STR --reply TEXT]\n"
        "              [--time-key STR] [--header 'Name: value']...\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "host", 1, 0, 'h' }, { "port", 1, 0, 'p' }, { "path", 1, 0, 'P' },
        { "clients", 1, 0, 'n' }, { "sources", 1, 0, 's' }, { "concurrency", 1, 0, 'c' },
        { "deflate-share", 1, 0, 'd' }, { "send", 1, 0, 'S' }, { "ready-marker", 1, 0, 'm' },
        { "send-file", 1, 0, 'F' }, { "reply-on", 1, 0, 'r' }, { "reply", 1, 0, 'R' }, { "ready-count", 1, 0, 'k' }, { "time-key", 1, 0, 't' }, { "header", 1, 0, 'H' },
        { 0, 0, 0, 0 } };
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'h': o_host = optarg; break;
        case 'p': o_port = atoi(optarg); break;
        case 'P': o_path = optarg; break;
        case 'n': o_clients = atoi(optarg); break;
        case 's': o_sources = atoi(optarg); break;
        case 'c': o_conc = atoi(optarg); break;
        case 'd': o_share = atof(optarg); break;
        case 'S': o_send = xrealloc(o_send, (size_t)(o_nsend + 1) * sizeof *o_send); o_send[o_nsend++] = optarg; break;
        case 'F': load_lines(optarg); break;
        case 'r': o_reply_on = optarg; o_reply_on_len = strlen(optarg); break;
        case 'R': o_reply = optarg; break;
        case 'm': o_marker = optarg; break;
        case 'k': o_ready_count = (uint32_t)atoi(optarg); break;
        case 't': o_key = optarg; break;
        case 'H': o_hdr = xrealloc(o_hdr, (size_t)(o_nhdr + 1) * sizeof *o_hdr); o_hdr[o_nhdr++] = optarg; break;
        default: usage();
        }
    }
    if (optind != argc || o_clients < 1 || o_conc < 1 || o_sources < 1 || o_port < 1 ||
        o_port > 65535 || o_share < 0 || o_share > 1 || !*o_key || (o_marker && !*o_marker) ||
        !o_reply_on != !o_reply || (o_reply_on && !*o_reply_on))
        usage();
    o_key_len = strlen(o_key);
    if (o_marker) o_marker_len = strlen(o_marker);
    if (o_ready_count < 1) o_ready_count = 1;

    dst.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t)o_port);
    if (inet_pton(AF_INET, o_host, &dst.sin_addr) != 1) {
        struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *ai;
        if (getaddrinfo(o_host, NULL, &hints, &ai)) { fprintf(stderr, "wsload: cannot resolve %s\n", o_host); return 2; }
        dst.sin_addr = ((struct sockaddr_in *)ai->ai_addr)->sin_addr;
        freeaddrinfo(ai);
    }

    struct rlimit rl;  /* 20k sockets need more than the usual 1024 */
    if (!getrlimit(RLIMIT_NOFILE, &rl)) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < (rlim_t)o_clients + 16)
            fprintf(stderr, "wsload: RLIMIT_NOFILE %llu < clients, expect failures\n",
                    (unsigned long long)rl.rlim_cur);
    }
    signal(SIGPIPE, SIG_IGN);

    rng_state = (uint64_t)clock_ns(CLOCK_REALTIME) ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ULL;
    conns = calloc((size_t)o_clients, sizeof *conns);
    ready_ms = calloc((size_t)o_clients, sizeof *ready_ms);
    lat = calloc(LAT_BUCKETS + 1, sizeof *lat);
    if (!conns || !ready_ms || !lat) { fprintf(stderr, "wsload: out of memory\n"); return 2; }
    grow(&rbuf, &rcap, 4 * READ_CHUNK);
    grow(&zbuf, &zcap, 256 * 1024);
    grow(&sbuf, &scap, 4096);

    ep = epoll_create1(EPOLL_CLOEXEC);
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    struct epoll_event sev = { .events = EPOLLIN, .data.u64 = STDIN_TAG };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, 0, &sev) < 0)  /* e.g. stdin is a regular file */
        fprintf(stderr, "wsload: stdin is not pollable (%s); control disabled\n", strerror(errno));

    t0 = clock_ns(CLOCK_MONOTONIC);
    iv_reset();
    start_more();

    struct epoll_event evs[512];
    for (;;) {
        int n = epoll_wait(ep, evs, 512, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("wsload: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 == STDIN_TAG) { on_stdin(); continue; }
            /* a connection closed earlier in this batch may still have events queued */
            conn_t *c = &conns[evs[i].data.u64];
            uint32_t e = evs[i].events;
            if (c->state == ST_CONNECTING) { on_writable(c); continue; }
            if ((e & EPOLLOUT) && c->state != ST_DONE && c->woff < c->wlen) on_writable(c);
            if ((e & (EPOLLIN | EPOLLHUP | EPOLLERR)) && c->state != ST_DONE) on_readable(c);
        }
    }
}
