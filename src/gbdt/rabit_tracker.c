/* src/gbdt/rabit_tracker.c — a rabit 1.x tracker for XGBoost's workers.
 *
 * The protocol (rabit as shipped in XGBoost 1.7; the Python RabitTracker
 * of xgboost/tracker.py speaks the same). Integers are 32-bit, host byte
 * order; a string is its length (an integer) followed by its bytes.
 *
 * Each worker opens one connection per request:
 *   worker -> tracker  magic 0xff99
 *   tracker -> worker  magic 0xff99
 *   worker -> tracker  rank (-1: not known), world size (-1), task id, command
 * Commands:
 *   "print"     worker -> tracker: a message to log. Connection ends.
 *   "shutdown"  the worker (rank >= 0) is done. Once every worker said it,
 *               the tracker ends.
 *   "start"     the worker wants its rank and links:
 *     tracker -> worker  rank, parent in the tree (-1 at the root), world
 *                        size, number of tree neighbours, the neighbours,
 *                        ring predecessor, ring successor (-1: none or itself)
 *     then, until the worker reports no error:
 *     worker -> tracker  number of links it already has, their ranks
 *     tracker -> worker  how many peers to connect to (peers that started
 *                        before it and wait for accepts), how many will
 *                        connect to it, then per peer to connect to: host,
 *                        port, rank
 *     worker -> tracker  number of failed connects (0: done)
 *     worker -> tracker  the port it accepts its later peers on
 *
 * Topology: the tree is the binary heap of ranks (parent (r+1)/2-1), the
 * ring a depth-first walk of it, and ranks are then renumbered along the
 * ring (tracker.py's get_link_map). Keeping exactly that numbering makes
 * the reductions, and so the trees, bit-identical to a Python-tracked run.
 *
 * Ranks: the Python tracker sorts workers by host or task id; here the
 * task id is the worker's rtrain rank, taken as its rabit rank, so each
 * rank's shard is the shard of the same rabit rank. The tracker serves
 * connections one at a time from one thread, like tracker.py: a worker's
 * start completes only after its connects, and peers it connects to are
 * already accepting. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "rabit_tracker.h"

#define MAGIC 0xff99
#define MAX_LINKS 8      /* tree neighbours (3) plus ring links (2) */
#define HOST_MAX 64

typedef struct worker {
    char host[HOST_MAX];   /* as the tracker saw it: what peers connect to */
    int port;              /* where it accepts later peers */
    int wait_accept;       /* peers still to connect to it */
    int started, shut;
} worker;

struct rt_rabit_tracker {
    int fd;                /* listening socket */
    int world;
    int *parent, *prev, *next;
    int (*tree)[3], *ntree;
    worker *w;
    pthread_t thread;
    volatile int done;     /* the thread has ended */
    int conn;              /* the connection being served (closed by stop) */
    char error[512];       /* the thread's failure; "" if none */
};

/* ---- the link map (tracker.py's get_link_map) ------------------------------- */

/* Tree neighbours of r in the binary heap, ascending. */
static int heap_neighbours(int r, int n, int out[3])
{
    int k = 0, r1 = r + 1;
    if (r1 > 1)
        out[k++] = r1 / 2 - 1;
    if (r1 * 2 - 1 < n)
        out[k++] = r1 * 2 - 1;
    if (r1 * 2 < n)
        out[k++] = r1 * 2;
    return k;
}

/* Depth-first ring from r through its children, the last child's part
 * reversed; appends to ring at *len. */
static void share_ring(int r, int n, int *ring, int *len)
{
    int nb[3], k = heap_neighbours(r, n, nb), parent = (r + 1) / 2 - 1;
    int child[3], nc = 0;
    for (int i = 0; i < k; i++)
        if (nb[i] != parent)
            child[nc++] = nb[i];
    ring[(*len)++] = r;
    for (int i = 0; i < nc; i++) {
        int start = *len;
        share_ring(child[i], n, ring, len);
        if (i == nc - 1)   /* reverse the last child's part */
            for (int a = start, b = *len - 1; a < b; a++, b--) {
                int x = ring[a];
                ring[a] = ring[b];
                ring[b] = x;
            }
    }
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

/* Heap tree and ring, renumbered along the ring starting at 0. */
static rt_status link_map(rt_rabit_tracker *t)
{
    int n = t->world;
    int *ring = NULL, *rmap = NULL, *rprev = NULL, *rnext = NULL, len = 0;
    rt_status st = rt_alloc(&ring, (size_t)n, sizeof(int), "tracker ring");
    if (st == RT_OK)
        st = rt_alloc(&rmap, (size_t)n * 3, sizeof(int), "tracker ring map");
    if (st != RT_OK) {
        rt_free(ring);
        return st;
    }
    rprev = rmap + n;
    rnext = rmap + 2 * n;
    share_ring(0, n, ring, &len);
    for (int i = 0; i < n; i++) {
        rprev[ring[i]] = ring[(i + n - 1) % n];
        rnext[ring[i]] = ring[(i + 1) % n];
    }
    for (int i = 0, k = 0; i < n; i++, k = rnext[k])
        rmap[k] = i;
    for (int r = 0; r < n; r++) {
        int nb[3], k = heap_neighbours(r, n, nb), m = rmap[r];
        t->ntree[m] = k;
        for (int i = 0; i < k; i++)
            t->tree[m][i] = rmap[nb[i]];
        qsort(t->tree[m], (size_t)k, sizeof(int), cmp_int);   /* a set, sent in order */
        t->parent[m] = r == 0 ? -1 : rmap[(r + 1) / 2 - 1];
        t->prev[m] = rmap[rprev[r]];
        t->next[m] = rmap[rnext[r]];
    }
    rt_free(ring);
    rt_free(rmap);
    return RT_OK;
}

/* ---- socket I/O (errors end the tracker: a worker that breaks the
 * protocol breaks the job) ------------------------------------------------------ */

static int fail(rt_rabit_tracker *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(rt_rabit_tracker *t, const char *fmt, ...)
{
    if (!t->error[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->error, sizeof t->error, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int io_all(rt_rabit_tracker *t, int fd, void *buf, size_t n, int out)
{
    char *p = buf;
    while (n > 0) {
        ssize_t k = out ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return fail(t, "rabit tracker: a worker's connection ended: %s",
                        k == 0 ? "closed by the worker" : strerror(errno));
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int recv_int(rt_rabit_tracker *t, int fd, int *v)
{
    int32_t x;
    if (io_all(t, fd, &x, 4, 0))
        return -1;
    *v = x;
    return 0;
}

static int send_int(rt_rabit_tracker *t, int fd, int v)
{
    int32_t x = v;
    return io_all(t, fd, &x, 4, 1);
}

/* A string of at most size-1 bytes (longer is a protocol error). */
static int recv_str(rt_rabit_tracker *t, int fd, char *buf, size_t size)
{
    int len;
    if (recv_int(t, fd, &len))
        return -1;
    if (len < 0 || (size_t)len >= size)
        return fail(t, "rabit tracker: a worker sent a string of %d bytes", len);
    buf[len] = '\0';
    return io_all(t, fd, buf, (size_t)len, 0);
}

static int send_str(rt_rabit_tracker *t, int fd, const char *s)
{
    return send_int(t, fd, (int)strlen(s)) || io_all(t, fd, (void *)s, strlen(s), 1);
}

/* ---- one worker's start ------------------------------------------------------------ */

/* Rank, parent, world, tree neighbours and ring links; *links receives the
 * set the worker must end up linked to (ascending). */
static int send_assignment(rt_rabit_tracker *t, int fd, int r, int *links, int *nlinks)
{
    int k = 0;
    if (send_int(t, fd, r) || send_int(t, fd, t->parent[r]) || send_int(t, fd, t->world) ||
        send_int(t, fd, t->ntree[r]))
        return -1;
    for (int i = 0; i < t->ntree[r]; i++) {
        links[k++] = t->tree[r][i];
        if (send_int(t, fd, t->tree[r][i]))
            return -1;
    }
    int ring[2] = {t->prev[r], t->next[r]};
    for (int i = 0; i < 2; i++) {
        int peer = ring[i] == r ? -1 : ring[i];
        int seen = 0;
        for (int j = 0; j < k; j++)
            seen |= links[j] == peer;
        if (peer >= 0 && !seen)
            links[k++] = peer;
        if (send_int(t, fd, peer))
            return -1;
    }
    qsort(links, (size_t)k, sizeof(int), cmp_int);
    *nlinks = k;
    return 0;
}

/* The link rounds: peers already started are connected to, the others will
 * connect to this worker; ends with the worker's accepting port. */
static int connect_links(rt_rabit_tracker *t, int fd, int r, const int *links, int nlinks)
{
    for (;;) {
        int ngood, good[MAX_LINKS], bad[MAX_LINKS], nbad = 0, con[MAX_LINKS], ncon = 0;
        if (recv_int(t, fd, &ngood))
            return -1;
        if (ngood < 0 || ngood > nlinks)
            return fail(t, "rabit tracker: rank %d reports %d links of %d", r, ngood, nlinks);
        for (int i = 0; i < ngood; i++)
            if (recv_int(t, fd, &good[i]))
                return -1;
        for (int i = 0; i < nlinks; i++) {
            int have = 0;
            for (int j = 0; j < ngood; j++)
                have |= good[j] == links[i];
            if (!have)
                bad[nbad++] = links[i];
        }
        for (int i = 0; i < nbad; i++)
            if (t->w[bad[i]].started && t->w[bad[i]].wait_accept > 0)
                con[ncon++] = bad[i];
        if (send_int(t, fd, ncon) || send_int(t, fd, nbad - ncon))
            return -1;
        for (int i = 0; i < ncon; i++)
            if (send_str(t, fd, t->w[con[i]].host) || send_int(t, fd, t->w[con[i]].port) ||
                send_int(t, fd, con[i]))
                return -1;
        int nerr;
        if (recv_int(t, fd, &nerr))
            return -1;
        if (nerr != 0)
            continue;   /* the worker retries the connects that failed */
        if (recv_int(t, fd, &t->w[r].port))
            return -1;
        for (int i = 0; i < ncon; i++)
            t->w[con[i]].wait_accept--;
        t->w[r].wait_accept = nbad - ncon;
        t->w[r].started = 1;
        return 0;
    }
}

/* The rank a worker asks for, or the number in its task id. */
static int decide_rank(rt_rabit_tracker *t, int rank, const char *task)
{
    char *end = NULL;
    long r = rank >= 0 ? rank : strtol(task, &end, 10);
    if (rank < 0 && (!task[0] || *end))
        return fail(t, "rabit tracker: a worker without a rank has task id \"%s\" (rtrain "
                    "sets it to the rank)", task);
    if (r < 0 || r >= t->world)
        return fail(t, "rabit tracker: a worker asks for rank %ld of %d", r, t->world);
    return (int)r;
}

/* One connection: the handshake, then its command. 1: every worker has
 * shut down; 0: go on; -1: protocol error. */
static int serve(rt_rabit_tracker *t, int fd, const char *host)
{
    int magic, rank, world;
    char task[256], cmd[32], msg[4096];
    if (recv_int(t, fd, &magic))
        return -1;
    if (magic != MAGIC)
        return fail(t, "rabit tracker: a connection from %s is not an XGBoost worker "
                    "(magic %#x)", host, magic);
    if (send_int(t, fd, MAGIC) || recv_int(t, fd, &rank) || recv_int(t, fd, &world) ||
        recv_str(t, fd, task, sizeof task) || recv_str(t, fd, cmd, sizeof cmd))
        return -1;
    if (world > 0 && world != t->world)
        return fail(t, "rabit tracker: a worker expects %d workers, rtrain has %d ranks",
                    world, t->world);
    if (!strcmp(cmd, "print")) {
        if (recv_str(t, fd, msg, sizeof msg))
            return -1;
        rt_debug("xgboost: %s", msg);
        return 0;
    }
    int r = decide_rank(t, rank, task);
    if (r < 0)
        return -1;
    if (!strcmp(cmd, "shutdown")) {
        t->w[r].shut = 1;
        for (int i = 0; i < t->world; i++)
            if (!t->w[i].shut)
                return 0;
        return 1;
    }
    if (strcmp(cmd, "start") != 0)
        return fail(t, "rabit tracker: command \"%s\" from rank %d is not supported (a "
                    "worker restarted?)", cmd, r);
    int links[MAX_LINKS], nlinks = 0;
    snprintf(t->w[r].host, sizeof t->w[r].host, "%s", host);
    if (send_assignment(t, fd, r, links, &nlinks))
        return -1;
    return connect_links(t, fd, r, links, nlinks);
}

static void *tracker_main(void *arg)
{
    rt_rabit_tracker *t = arg;
    for (;;) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        int fd = accept(t->fd, (struct sockaddr *)&peer, &plen);
        if (fd < 0 && errno == EINTR)
            continue;
        if (fd < 0) {
            fail(t, "rabit tracker: accept failed: %s", strerror(errno));
            break;
        }
        char host[HOST_MAX] = "?";
        if (peer.ss_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)&peer)->sin_addr, host, sizeof host);
        else if (peer.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&peer)->sin6_addr, host, sizeof host);
        t->conn = fd;
        int rc = serve(t, fd, host);
        t->conn = -1;
        close(fd);
        if (rc != 0)
            break;
    }
    t->done = 1;
    return NULL;
}

/* ---- start and stop ---------------------------------------------------------------- */

static rt_status listen_on(rt_rabit_tracker *t, const char *host, int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (host && inet_pton(AF_INET, host, &a.sin_addr) != 1)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rabit tracker: %s is not an IPv4 address", host);
    t->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    socklen_t len = sizeof a;
    if (t->fd < 0 || bind(t->fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(t->fd, 256) != 0 || getsockname(t->fd, (struct sockaddr *)&a, &len) != 0)
        return RT_ERROR(RT_ERR_IO, "rabit tracker: cannot listen on %s: %s",
                        host ? host : "every address", strerror(errno));
    *port = ntohs(a.sin_port);
    return RT_OK;
}

static rt_status tracker_alloc(rt_rabit_tracker *t, int world)
{
    size_t n = (size_t)world;
    RT_CHECK(rt_alloc(&t->parent, n * 4, sizeof(int), "tracker links"));
    t->prev = t->parent + n;
    t->next = t->parent + 2 * n;
    t->ntree = t->parent + 3 * n;
    RT_CHECK(rt_alloc(&t->tree, n, sizeof *t->tree, "tracker tree"));
    RT_CHECK(rt_alloc(&t->w, n, sizeof *t->w, "tracker workers"));
    return RT_OK;
}

static void tracker_free(rt_rabit_tracker *t)
{
    if (t->fd >= 0)
        close(t->fd);
    rt_free(t->parent);
    rt_free(t->tree);
    rt_free(t->w);
    rt_free(t);
}

rt_status rt_rabit_tracker_start(rt_rabit_tracker **out, const char *host, int world, int *port)
{
    *out = NULL;
    rt_rabit_tracker *t = NULL;
    RT_CHECK(rt_alloc(&t, 1, sizeof *t, "rabit tracker"));
    t->fd = -1;
    t->conn = -1;
    t->world = world;
    rt_status st = world >= 1 ? tracker_alloc(t, world)
                              : RT_ERROR(RT_ERR_INVALID_ARG, "rabit tracker: %d workers", world);
    if (st == RT_OK)
        st = link_map(t);
    if (st == RT_OK)
        st = listen_on(t, host, port);
    if (st == RT_OK && pthread_create(&t->thread, NULL, tracker_main, t) != 0)
        st = RT_ERROR(RT_ERR_INTERNAL, "rabit tracker: cannot start its thread");
    if (st != RT_OK) {
        tracker_free(t);
        return st;
    }
    *out = t;
    return RT_OK;
}

rt_status rt_rabit_tracker_stop(rt_rabit_tracker *t, double timeout_s)
{
    if (!t)
        return RT_OK;
    struct timespec pause = {0, 10 * 1000 * 1000};
    for (double waited = 0; !t->done && waited < timeout_s; waited += 0.01)
        nanosleep(&pause, NULL);
    if (!t->done) {   /* wake the thread: its accept or recv fails */
        fail(t, "rabit tracker: the workers did not all shut down within %.0f s", timeout_s);
        shutdown(t->fd, SHUT_RDWR);
        int conn = t->conn;
        if (conn >= 0)
            shutdown(conn, SHUT_RDWR);
    }
    pthread_join(t->thread, NULL);
    rt_status st = t->error[0] ? RT_ERROR(RT_ERR_IO, "%s", t->error) : RT_OK;
    tracker_free(t);
    return st;
}
