/* The userspace delay line: the long-haul fiber where the kernel has no netem.
 *
 * One process per WAN link bridges two veth ends (a and b) in the root namespace and holds every
 * frame for the link's one-way propagation delay, in each direction. Frames leave in arrival
 * order, so configured jitter never reorders packets (netem's does). Random loss is applied per
 * frame. Queueing and the choice of the next frame are not done here: HTB on the switch ports
 * shapes the link, like a router's egress queue in front of the fiber. The fiber's own
 * serialization is (rate_bps): a frame arrives len*8/rate after HTB released it.
 *
 * Traffic classes (class_dscps): where the switch port has detpath's HTB classes, each class is
 * serialized on its own, in arrival order within the class, as netem does with one netem leaf per
 * class. Why not one FIFO for the whole line: the bandwidth is scaled down (1/4000: a 400 Gbit/s
 * line is emulated at 100 Mbit/s) but frames are not, so one jumbo frame on the emulated line
 * stands for 4,000 real ones, and a probe that waited for all of it would wait 0.72 ms where the
 * real port's strict priority makes it wait for at most one real frame (0.18 us). HTB in front
 * keeps the classes' rates and the line's; frames of different classes may overtake each other.
 *
 * Why C: a Python delay line takes about 80% of a core to carry 2 x 80 Mbit/s; on a 2-core
 * machine that CPU is taken from the switches and the workers, and every multi-flow measurement
 * (ring all-reduce, interference) is capped by it. This one reads frames in batches with
 * recvmmsg, takes the kernel's receive timestamp of every frame (so our own wake-up latency is
 * not added to the delay) and sleeps with a 1 ns timer slack until the next frame is due.
 *
 * Delay compensation (comp_first_s, comp_transit_ab_s, comp_transit_ba_s, site_a, site_b): the
 * twin measures its own latency floor (the sender's stack, the userspace switch passes, this
 * process's own hop) when it comes up and asks the line to hold each frame that much less, so
 * that what a worker measures is the configured fiber delay (twin/emulation/compensation.py). A
 * frame that enters the WAN here, from a worker of this end's site (worker MACs are
 * 02:00:00:00:SS:KK, SS the site index), has the whole one-hop floor taken off; a frame coming
 * from another WAN link only what one more hop adds. A hold never goes below zero.
 *
 * Parameters live in a small JSON file written by the twin (delay_s, jitter_s, loss, down, seed,
 * rate_bps, class_dscps, the compensation);
 * SIGHUP re-reads it, so `twin link set` changes a live link without losing what is in flight.
 * On SIGTERM/SIGINT it prints its counters as one JSON line and exits.
 *
 * How late it released each frame (now - due) goes into a power-of-two histogram: the emulator's
 * own error, which a measurement can check instead of trusting (a real-time process on a VM
 * still wakes late when the host pauses the VM). SIGUSR1 writes the counters and histogram to
 * PARAMS.stats (atomically, with a dump sequence number); so does the exit.
 *
 * Usage: twin-delayline --a IF_A --b IF_B --params FILE [--cpu N] [--rt PRIO]
 *
 * --rt runs it SCHED_FIFO at that priority (0: time-shared).
 *
 * --cpu pins the process to one CPU. It must stay on one: a frame sent into a veth is queued on
 * the sending CPU's backlog, so a process that migrates between two sends can have its later
 * frame delivered first (measured: 37 of 2,000 probe packets reordered with jitter, unpinned).
 * Built by twin/delayline.py (gcc -O2), which the twin calls at setup and before first use.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <math.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

#define BATCH 64
#define MAX_FRAME 65536
#define SOCK_BUF (64 * 1024 * 1024)
#define MAX_QUEUED_BYTES (512LL * 1024 * 1024) /* per direction; beyond it frames are dropped */
#define MAX_CLASSES 33 /* lane 0: unclassified; 1..32: class_dscps[0..31], two per reservation */
#define LATE_BUCKETS 28 /* [0]: < 1 us late; [k]: 2^(k-1) to 2^k us; the last also holds beyond */

struct pkt {
    struct pkt *next;
    int64_t due_ns;
    uint32_t len;
    unsigned char data[];
};

struct fifo {
    struct pkt *head, *tail;
    int64_t last_due;
};

/* Frames read from one side, leaving by the other: one FIFO per traffic class. */
struct direction {
    struct fifo lanes[MAX_CLASSES];
    long long bytes;
};

struct params {
    double delay, jitter, loss, rate;
    double comp_first, comp_transit[2]; /* [0]: frames from end a to b, [1]: from b to a */
    int site[2];                        /* the site index of end a and of end b (0: unknown) */
    int down;
    int has_seed;
    uint64_t seed;
    int n_classes;
    int class_dscps[MAX_CLASSES - 1];
};

static volatile sig_atomic_t reload_requested, stop_requested, stats_requested;
static uint64_t rng_state;
static struct {
    unsigned long long forwarded, lost, send_errors, overflow, truncated;
} counters;
static unsigned long long late_hist[LATE_BUCKETS], stats_dumps;

static void on_hup(int sig) { (void)sig; reload_requested = 1; }
static void on_usr1(int sig) { (void)sig; stats_requested = 1; }
static void on_term(int sig) { (void)sig; stop_requested = 1; }

static void record_late(int64_t late_ns) {
    int k = 0;
    int64_t us = late_ns > 0 ? late_ns / 1000 : 0;
    while (us > 0 && k < LATE_BUCKETS - 1) { us >>= 1; k++; }
    late_hist[k]++;
}

/* Counters and lateness histogram as one JSON object, written to PATH.stats via a rename. */
static void write_stats(const char *params_path) {
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s.stats", params_path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *fh = fopen(tmp, "w");
    if (!fh) return;
    fprintf(fh, "{\"dumps\": %llu, \"forwarded\": %llu, \"lost\": %llu, \"send_errors\": %llu, "
            "\"overflow\": %llu, \"truncated\": %llu, \"late_hist_pow2_us\": [",
            ++stats_dumps, counters.forwarded, counters.lost, counters.send_errors,
            counters.overflow, counters.truncated);
    for (int k = 0; k < LATE_BUCKETS; k++) fprintf(fh, "%s%llu", k ? ", " : "", late_hist[k]);
    fprintf(fh, "]}\n");
    if (fclose(fh) == 0) rename(tmp, path);
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* the clock of the kernel's receive timestamps */
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* splitmix64: small, fast, seedable; good enough for loss and jitter draws */
static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double rng_uniform(void) { return (double)(rng_next() >> 11) * 0x1.0p-53; }

static double rng_gauss(double mean, double sd) {
    double u1 = rng_uniform(), u2 = rng_uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return mean + sd * sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* The twin writes this file (json.dumps of a flat dict), so looking keys up is enough. */
static int json_number(const char *text, const char *key, double *out) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\"", key);
    const char *p = strstr(text, pattern);
    if (!p) return 0;
    p = strchr(p + strlen(pattern), ':');
    if (!p) return 0;
    p++;
    while (*p == ' ') p++;
    if (strncmp(p, "true", 4) == 0) { *out = 1; return 1; }
    if (strncmp(p, "false", 5) == 0 || strncmp(p, "null", 4) == 0) { *out = 0; return 1; }
    char *end;
    double v = strtod(p, &end);
    if (end == p) return -1;
    *out = v;
    return 1;
}

/* "key": [n, n, ...] of DSCPs (0-63); returns how many, 0 if the key is absent, -1 if malformed. */
static int json_dscp_list(const char *text, const char *key, int *out, int max) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\"", key);
    const char *p = strstr(text, pattern);
    if (!p) return 0;
    p = strchr(p + strlen(pattern), ':');
    if (!p) return -1;
    p++;
    while (*p == ' ') p++;
    if (*p++ != '[') return -1;
    int n = 0;
    for (;;) {
        while (*p == ' ') p++;
        if (*p == ']') return n;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > 63 || n == max) return -1;
        out[n++] = (int)v;
        p = end;
        while (*p == ' ') p++;
        if (*p == ',') p++;
        else if (*p != ']') return -1;
    }
}

static int load_params(const char *path, struct params *out) {
    char text[4096];
    FILE *fh = fopen(path, "r");
    if (!fh) {
        fprintf(stderr, "delayline: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t n = fread(text, 1, sizeof text - 1, fh);
    fclose(fh);
    text[n] = 0;
    struct params p = {0};
    double v;
    const char *keys[] = {"delay_s", "jitter_s", "loss", "down", "seed", "rate_bps",
                          "comp_first_s", "comp_transit_ab_s", "comp_transit_ba_s",
                          "site_a", "site_b"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        int found = json_number(text, keys[i], &v);
        if (found < 0 || (found && (!isfinite(v) || v < 0))) {
            fprintf(stderr, "delayline: %s: %s: not a non-negative number\n", path, keys[i]);
            return -1;
        }
        if (!found) continue;
        switch (i) {
        case 0: p.delay = v; break;
        case 1: p.jitter = v; break;
        case 2: p.loss = v; break;
        case 3: p.down = v != 0; break;
        case 4: p.has_seed = 1; p.seed = (uint64_t)v; break;
        case 5: p.rate = v; break;
        case 6: p.comp_first = v; break;
        case 7: p.comp_transit[0] = v; break;
        case 8: p.comp_transit[1] = v; break;
        case 9: p.site[0] = (int)v; break;
        case 10: p.site[1] = (int)v; break;
        }
    }
    p.n_classes = json_dscp_list(text, "class_dscps", p.class_dscps, MAX_CLASSES - 1);
    if (p.n_classes < 0) {
        fprintf(stderr, "delayline: %s: class_dscps: not a list of at most %d DSCPs (0-63)\n",
                path, MAX_CLASSES - 1);
        return -1;
    }
    *out = p;
    return 0;
}

static int open_port(const char *ifname) {
    unsigned idx = if_nametoindex(ifname);
    if (!idx) {
        fprintf(stderr, "delayline: no interface %s: %s\n", ifname, strerror(errno));
        return -1;
    }
    /* protocol 0 until bound: the socket must not see other interfaces' frames meanwhile */
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "delayline: AF_PACKET socket: %s\n", strerror(errno));
        return -1;
    }
    struct sockaddr_ll sll = {0};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = (int)idx;
    if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) {
        fprintf(stderr, "delayline: bind %s: %s\n", ifname, strerror(errno));
        close(fd);
        return -1;
    }
    int size = SOCK_BUF, one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
    setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one); /* also checked below */
    return fd;
}

static struct pkt *pop(struct direction *d, struct fifo *q) {
    struct pkt *p = q->head;
    q->head = p->next;
    if (!q->head) q->tail = NULL;
    d->bytes -= p->len;
    return p;
}

/* The frame's IP DSCP (IPv4 or IPv6, one VLAN tag allowed), -1 if it carries no IP. */
static int frame_dscp(const unsigned char *f, uint32_t len) {
    uint32_t off = 12;
    if (len < off + 2) return -1;
    unsigned type = (unsigned)f[off] << 8 | f[off + 1];
    if (type == 0x8100 || type == 0x88a8) {
        off += 4;
        if (len < off + 2) return -1;
        type = (unsigned)f[off] << 8 | f[off + 1];
    }
    off += 2;
    if (len < off + 2) return -1;
    if (type == 0x0800) return f[off + 1] >> 2;
    if (type == 0x86dd) return ((f[off] & 0x0f) << 2) | (f[off + 1] >> 6);
    return -1;
}

/* The site index of a frame sent by a twin worker (source MAC 02:00:00:00:SS:KK), else -1. */
static int frame_src_site(const unsigned char *f, uint32_t len) {
    if (len < 12 || f[6] != 0x02 || f[7] || f[8] || f[9]) return -1;
    return f[10];
}

/* How much of the host's floor to take off a frame read from end `side` (0: a, 1: b). */
static double compensation(const struct params *prm, int side, const unsigned char *f, uint32_t len) {
    int src = frame_src_site(f, len);
    return (src > 0 && src == prm->site[side]) ? prm->comp_first : prm->comp_transit[side];
}

static int lane_of(const struct params *prm, const unsigned char *f, uint32_t len) {
    if (!prm->n_classes) return 0;
    int dscp = frame_dscp(f, len);
    for (int k = 0; k < prm->n_classes; k++)
        if (prm->class_dscps[k] == dscp) return k + 1;
    return 0;
}

/* The lane whose first frame is due soonest, or NULL if every lane is empty. */
static struct fifo *next_lane(struct direction *d) {
    struct fifo *best = NULL;
    for (int k = 0; k < MAX_CLASSES; k++)
        if (d->lanes[k].head && (!best || d->lanes[k].head->due_ns < best->head->due_ns))
            best = &d->lanes[k];
    return best;
}

/* Read what is waiting on `fd` into `q` (at most a few batches, so sending is never starved). */
static void receive(int fd, int side, struct direction *d, const struct params *prm) {
    static unsigned char bufs[BATCH][MAX_FRAME];
    static char ctrl[BATCH][CMSG_SPACE(sizeof(struct timespec))];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_ll from[BATCH];
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < BATCH; i++) {
            iov[i].iov_base = bufs[i];
            iov[i].iov_len = MAX_FRAME;
            memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = &from[i];
            msgs[i].msg_hdr.msg_namelen = sizeof from[i];
            msgs[i].msg_hdr.msg_control = ctrl[i];
            msgs[i].msg_hdr.msg_controllen = sizeof ctrl[i];
        }
        int n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0) {
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                int err;
                socklen_t len = sizeof err;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len); /* clear it (link went down) */
            }
            return;
        }
        int64_t fallback = now_ns();
        for (int i = 0; i < n; i++) {
            if (from[i].sll_pkttype == PACKET_OUTGOING) continue; /* our own transmission */
            if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) { counters.truncated++; continue; }
            if (prm->down || (prm->loss > 0 && rng_uniform() < prm->loss)) {
                counters.lost++;
                continue;
            }
            uint32_t len = msgs[i].msg_len;
            if (d->bytes + len > MAX_QUEUED_BYTES) { counters.overflow++; continue; }
            struct fifo *q = &d->lanes[lane_of(prm, bufs[i], len)];
            int64_t arrival = fallback;
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c;
                 c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                    struct timespec ts;
                    memcpy(&ts, CMSG_DATA(c), sizeof ts);
                    arrival = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
                }
            }
            /* serialization: the far end has a frame when its last bit arrives, len*8/rate after
             * HTB let its first bit go. Without it, a transfer that starts on an idle link is a
             * frame early (a 62.5 KB ring step on 100 Mbit/s: 0.7 ms of its 5 ms). Not a queue
             * of its own: a second queue behind HTB would hold frames HTB released together,
             * FIFO, and take the probes' priority away (measured: 3.7 ms of standing queue). */
            int64_t sent = arrival;
            if (prm->rate > 0) sent += (int64_t)((double)len * 8e9 / prm->rate);
            double hold = prm->jitter > 0 ? rng_gauss(prm->delay, prm->jitter) : prm->delay;
            hold -= compensation(prm, side, bufs[i], len);
            if (hold < 0) hold = 0;
            int64_t due = sent + (int64_t)(hold * 1e9);
            if (due < q->last_due) due = q->last_due; /* never reorder within a class */
            q->last_due = due;
            struct pkt *p = malloc(sizeof *p + len);
            if (!p) { counters.overflow++; continue; }
            p->next = NULL;
            p->due_ns = due;
            p->len = len;
            memcpy(p->data, bufs[i], len);
            if (q->tail) q->tail->next = p; else q->head = p;
            q->tail = p;
            d->bytes += len;
        }
        if (n < BATCH) return;
    }
}

/* Send every due frame of `d` out of `fd`, soonest first; returns 1 if the socket is full. */
static int transmit(int fd, struct direction *d, int64_t now) {
    struct fifo *q;
    while ((q = next_lane(d)) && q->head->due_ns <= now) {
        struct pkt *p = q->head;
        if (send(fd, p->data, p->len, MSG_DONTWAIT) < 0) {
            if (errno == EAGAIN || errno == ENOBUFS) return 1;
            counters.send_errors++; /* interface down or gone: the frame is lost like on a cut */
        } else {
            counters.forwarded++;
            record_late(now_ns() - p->due_ns); /* after the send: what the far end sees */
        }
        free(pop(d, q));
    }
    return 0;
}

static void usage(void) {
    fprintf(stderr, "usage: twin-delayline --a IF_A --b IF_B --params FILE [--cpu N] [--rt PRIO]\n");
}

int main(int argc, char **argv) {
    const char *if_a = NULL, *if_b = NULL, *params_path = NULL, *cpu = NULL;
    int rt_prio = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--a")) if_a = argv[i + 1];
        else if (!strcmp(argv[i], "--b")) if_b = argv[i + 1];
        else if (!strcmp(argv[i], "--params")) params_path = argv[i + 1];
        else if (!strcmp(argv[i], "--cpu")) cpu = argv[i + 1];
        else if (!strcmp(argv[i], "--rt")) rt_prio = atoi(argv[i + 1]);
        else { usage(); return 2; }
    }
    if (!if_a || !if_b || !params_path || argc % 2 == 0) { usage(); return 2; }

    struct params prm;
    if (load_params(params_path, &prm) < 0) return 1;
    rng_state = prm.has_seed ? prm.seed : ((uint64_t)now_ns() ^ ((uint64_t)getpid() << 32));

    const char *spin_env = getenv("TWIN_DELAYLINE_SPIN_US");
    int64_t spin_ns = spin_env ? (int64_t)(atof(spin_env) * 1000) : 0;
    if (cpu) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(atoi(cpu), &set);
        if (sched_setaffinity(0, sizeof set, &set) < 0)
            fprintf(stderr, "delayline: cannot pin to CPU %s: %s\n", cpu, strerror(errno));
    }
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* wake-ups as exact as the kernel can make them */
    setpriority(PRIO_PROCESS, 0, -10);
    /* Real-time priority, as netem has by running in the kernel ahead of every process: a
     * time-shared delay line is woken late whenever the switch and the hosts keep both cores
     * busy (measured under a UDP flood on fntf-4site: this hop's p99 +2.3 ms time-shared, +0.15 ms
     * SCHED_FIFO). It sleeps between frames; the kernel's RT throttling (95%) still bounds it. */
    if (rt_prio > 0) {
        struct sched_param sp = {.sched_priority = rt_prio};
        if (sched_setscheduler(0, SCHED_FIFO, &sp) < 0)
            fprintf(stderr, "delayline: no real-time priority (%s): time-shared, nice -10\n",
                    strerror(errno));
    }

    int fds[2] = {open_port(if_a), open_port(if_b)};
    if (fds[0] < 0 || fds[1] < 0) return 1;
    static struct direction dirs[2]; /* dirs[i]: frames read from fds[i], leaving by the other */

    sigset_t block, orig;
    sigemptyset(&block);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, &orig); /* delivered only inside ppoll: no lost wake-up */
    struct sigaction sa = {0};
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int blocked[2] = {0, 0};
    while (!stop_requested) {
        if (reload_requested) {
            reload_requested = 0;
            struct params next;
            if (load_params(params_path, &next) == 0) { /* a bad file keeps the old parameters */
                if (next.has_seed && (!prm.has_seed || next.seed != prm.seed)) rng_state = next.seed;
                prm = next;
            }
        }
        if (stats_requested) {
            stats_requested = 0;
            write_stats(params_path);
        }
        int64_t now = now_ns();
        for (int i = 0; i < 2; i++) blocked[i] = transmit(fds[1 - i], &dirs[i], now);

        int64_t next_due = -1;
        for (int i = 0; i < 2; i++) {
            struct fifo *q = next_lane(&dirs[i]);
            if (q && !blocked[i] && (next_due < 0 || q->head->due_ns < next_due))
                next_due = q->head->due_ns;
        }
        struct timespec timeout, *tp = NULL;
        if (blocked[0] || blocked[1]) {
            timeout.tv_sec = 0;
            timeout.tv_nsec = 100000; /* ENOBUFS gives no POLLOUT: retry in 0.1 ms */
            tp = &timeout;
        }
        if (next_due >= 0) {
            int64_t wait = next_due - now_ns() - spin_ns;
            if (wait < 0) wait = 0;
            if (!tp || wait < (int64_t)timeout.tv_nsec) {
                timeout.tv_sec = wait / 1000000000LL;
                timeout.tv_nsec = wait % 1000000000LL;
                tp = &timeout;
            }
        }
        struct pollfd pfd[2];
        for (int i = 0; i < 2; i++) {
            pfd[i].fd = fds[i];
            pfd[i].events = POLLIN | (blocked[1 - i] ? POLLOUT : 0);
            pfd[i].revents = 0;
        }
        int r = ppoll(pfd, 2, tp, &orig);
        if (r < 0) continue; /* EINTR: a signal; the loop head handles it */
        for (int i = 0; i < 2; i++)
            if (pfd[i].revents & (POLLIN | POLLERR)) receive(fds[i], i, &dirs[i], &prm);
    }
    write_stats(params_path);
    printf("{\"forwarded\": %llu, \"lost\": %llu, \"send_errors\": %llu, \"overflow\": %llu, "
           "\"truncated\": %llu}\n",
           counters.forwarded, counters.lost, counters.send_errors, counters.overflow,
           counters.truncated);
    fflush(stdout);
    return 0;
}
