/*
 * fakexen: a Xen test double for the daemon, loaded with LD_PRELOAD.
 *
 * Why: no machine that runs the tests has a hypervisor, yet the ring code,
 * event channels, domain introduction and domain death must be tested with
 * the ordinary daemon binary.  This library defines the libxenevtchn,
 * libxengnttab, libxenforeignmemory and libxenctrl functions the daemon
 * calls (with the prototypes of the real headers, so it cannot drift), and
 * redirects the open() of dom0's ring files.  A test harness
 * (tests/integration/fakexen.py) plays the guests and the hypervisor through
 * files and sockets in $FAKEXEN_DIR; tests/fakexen/README.md is the contract.
 *
 *   grant / foreign mappings  ->  mmap(MAP_SHARED) of a 4096-byte file
 *   event channel signals     ->  8-byte datagrams { domid, port } on
 *                                 AF_UNIX sockets
 *   domain info               ->  a 65536-byte table, one state byte a domid
 *
 * Without FAKEXEN_DIR every *_open fails with ENOENT, as on a machine
 * without Xen.  Only the functions listed in the README exist here; any
 * other Xen call would reach the real library with a fake handle.
 */
#undef _FORTIFY_SOURCE /* we define open() ourselves */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <xenctrl.h>
#include <xenevtchn.h>
#include <xenforeignmemory.h>
#include <xengnttab.h>
#include <uthash.h>

#define PAGE 4096
#define NR_DOMIDS 65536
#define VIRQ_DOMID 0xFFFF /* the "domid" of a VIRQ signal (DOMID_INVALID) */

/* States in the `domains` table. */
enum { DOM_NONE = 0, DOM_RUNNING = 1, DOM_SHUTDOWN = 2, DOM_DYING = 3 };

/* One signal, as sent on every socket. */
struct signal_msg {
    uint32_t domid;
    uint32_t port;
};

/* ------------------------------------------------------------ helpers */

/* The real open(), so that our own file accesses skip the redirection. */
static int real_open(const char *path, int flags, mode_t mode)
{
    static int (*fn)(const char *, int, ...);

    if (!fn)
        fn = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
    return fn(path, flags, mode);
}

/* A copy of $FAKEXEN_DIR, or NULL with errno = ENOENT if it is unset. */
static char *fake_dir(void)
{
    const char *d = getenv("FAKEXEN_DIR");
    char *copy;

    if (!d || !*d) {
        errno = ENOENT;
        return NULL;
    }
    copy = strdup(d);
    if (!copy)
        errno = ENOMEM;
    return copy;
}

/* Map a whole file of `len` bytes: MAP_SHARED, so both sides see writes. */
static void *map_file(const char *path, size_t len, int prot)
{
    int fd = real_open(path, (prot & PROT_WRITE) ? O_RDWR : O_RDONLY, 0);
    void *p;
    int saved;

    if (fd < 0)
        return NULL;
    p = mmap(NULL, len, prot, MAP_SHARED, fd, 0);
    saved = errno;
    close(fd);
    errno = saved;
    return p == MAP_FAILED ? NULL : p;
}

/* Map `dir`/domains read-only; NULL (errno set) if it is missing. */
static const uint8_t *map_domains(const char *dir)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/domains", dir);
    return map_file(path, NR_DOMIDS, PROT_READ);
}

/* Fill a sockaddr_un with `dir`/`name`; -1 with ENAMETOOLONG if too long. */
static int unix_addr(struct sockaddr_un *sa, const char *dir, const char *name)
{
    int n;

    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof(sa->sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------ libxenevtchn */

enum { BIND_FREE, BIND_INTERDOMAIN, BIND_VIRQ };

/*
 * One bound local port.  Interdomain bindings have key (domid, remote
 * port); VIRQ bindings have key (VIRQ_DOMID, virq), which is exactly the
 * datagram the harness sends for a VIRQ, so one hash lookup serves both.
 */
struct binding {
    uint64_t key; /* domid << 32 | remote port (or virq) */
    uint32_t domid, remote;
    evtchn_port_t local;
    bool masked;  /* reported by xenevtchn_pending, not unmasked since */
    bool pending; /* signalled while masked: reported again at unmask */
    struct binding *redeliver_next; /* in h->redeliver */
    UT_hash_handle hh;
};

struct xenevtchn_handle {
    int fd;                     /* the datagram socket at $FAKEXEN_DIR/evtchn */
    char *dir;
    const uint8_t *domains;     /* may be NULL: then no domain exists */
    struct binding *by_remote;  /* uthash: key -> binding */
    struct binding **by_local;  /* local port -> binding (NULL if free) */
    evtchn_port_t nr_local;     /* size of by_local */
    evtchn_port_t next_local;   /* ports are never reused; 0 is invalid */
    /* Unmasked with a signal pending, when the socket had no room for it
     * (so it is readable anyway): reported before the socket's signals. */
    struct binding *redeliver;
};

static uint64_t bind_key(uint32_t domid, uint32_t port)
{
    return (uint64_t)domid << 32 | port;
}

xenevtchn_handle *xenevtchn_open(struct xentoollog_logger *logger, unsigned int flags)
{
    struct sockaddr_un sa;
    xenevtchn_handle *h;
    int saved;

    (void)logger;
    h = calloc(1, sizeof(*h));
    if (!h) {
        errno = ENOMEM;
        return NULL;
    }
    h->fd = -1;
    h->next_local = 1;
    h->dir = fake_dir();
    if (!h->dir || unix_addr(&sa, h->dir, "evtchn") < 0)
        goto fail;
    h->domains = map_domains(h->dir);
    /* Blocking, as /dev/xen/evtchn is opened: a read waits for a signal
     * unless the caller sets O_NONBLOCK on the descriptor. */
    h->fd = socket(AF_UNIX, SOCK_DGRAM |
                   ((flags & XENEVTCHN_NO_CLOEXEC) ? 0 : SOCK_CLOEXEC), 0);
    if (h->fd < 0)
        goto fail;
    unlink(sa.sun_path); /* a stale socket from an earlier run */
    if (bind(h->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        goto fail;
    return h;
fail:
    saved = errno;
    xenevtchn_close(h);
    errno = saved;
    return NULL;
}

int xenevtchn_close(xenevtchn_handle *h)
{
    struct binding *b, *tmp;

    if (!h)
        return 0;
    HASH_ITER(hh, h->by_remote, b, tmp) {
        HASH_DEL(h->by_remote, b);
        free(b);
    }
    free(h->by_local);
    if (h->domains)
        munmap((void *)h->domains, NR_DOMIDS);
    if (h->fd >= 0)
        close(h->fd);
    free(h->dir);
    free(h);
    return 0;
}

int xenevtchn_fd(xenevtchn_handle *h)
{
    return h->fd;
}

/* Record a new binding under `key`; returns its local port or -1. */
static xenevtchn_port_or_error_t add_binding(xenevtchn_handle *h, uint32_t domid,
                                             uint32_t remote)
{
    struct binding *b;
    uint64_t key = bind_key(domid, remote);

    HASH_FIND(hh, h->by_remote, &key, sizeof(key), b);
    if (b) {
        errno = EINVAL; /* as Xen: the remote port is no longer unbound */
        return -1;
    }
    if (h->next_local >= h->nr_local) {
        evtchn_port_t n = h->nr_local ? h->nr_local * 2 : 64;
        struct binding **p = realloc(h->by_local, n * sizeof(*p));

        if (!p) {
            errno = ENOMEM;
            return -1;
        }
        memset(p + h->nr_local, 0, (n - h->nr_local) * sizeof(*p));
        h->by_local = p;
        h->nr_local = n;
    }
    b = calloc(1, sizeof(*b));
    if (!b) {
        errno = ENOMEM;
        return -1;
    }
    b->key = key;
    b->domid = domid;
    b->remote = remote;
    b->local = h->next_local++;
    HASH_ADD(hh, h->by_remote, key, sizeof(b->key), b);
    h->by_local[b->local] = b;
    return (xenevtchn_port_or_error_t)b->local;
}

xenevtchn_port_or_error_t xenevtchn_bind_interdomain(xenevtchn_handle *h, uint32_t domid,
                                                     evtchn_port_t remote_port)
{
    char path[PATH_MAX];

    if (domid >= NR_DOMIDS || !h->domains || h->domains[domid] == DOM_NONE) {
        errno = ESRCH;
        return -1;
    }
    snprintf(path, sizeof(path), "%s/fail-bind-%u", h->dir, domid);
    if (remote_port == 0 || access(path, F_OK) == 0) {
        errno = EINVAL;
        return -1;
    }
    return add_binding(h, domid, remote_port);
}

xenevtchn_port_or_error_t xenevtchn_bind_virq(xenevtchn_handle *h, unsigned int virq)
{
    return add_binding(h, VIRQ_DOMID, virq);
}

int xenevtchn_unbind(xenevtchn_handle *h, evtchn_port_t port)
{
    struct binding *b;

    if (port >= h->nr_local || !(b = h->by_local[port])) {
        errno = EINVAL;
        return -1;
    }
    for (struct binding **p = &h->redeliver; *p; p = &(*p)->redeliver_next)
        if (*p == b) {
            *p = b->redeliver_next;
            break;
        }
    HASH_DEL(h->by_remote, b);
    h->by_local[port] = NULL;
    free(b);
    return 0;
}

/*
 * The next signal for a bound port: reads datagrams until one matches a
 * binding (others are dropped, as Xen drops signals on closed channels).
 * As with the real device, the read blocks unless the descriptor is
 * O_NONBLOCK (then -1 with EAGAIN when nothing is queued), and a port
 * reported here is masked until xenevtchn_unmask: signals meanwhile
 * collapse into one, reported after the unmask.
 */
xenevtchn_port_or_error_t xenevtchn_pending(xenevtchn_handle *h)
{
    struct signal_msg m;
    struct binding *b;
    uint64_t key;
    ssize_t n;

    if ((b = h->redeliver)) {
        h->redeliver = b->redeliver_next;
        b->masked = true;
        return (xenevtchn_port_or_error_t)b->local;
    }
    for (;;) {
        n = recv(h->fd, &m, sizeof(m), 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1; /* EAGAIN when nothing is queued */
        }
        if (n != sizeof(m))
            continue; /* not a signal */
        key = bind_key(m.domid, m.port);
        HASH_FIND(hh, h->by_remote, &key, sizeof(key), b);
        if (!b)
            continue;
        if (b->masked) {
            b->pending = true;
            continue;
        }
        b->masked = true;
        return (xenevtchn_port_or_error_t)b->local;
    }
}

/* A signal that came while the port was masked is delivered now: sent to
 * ourselves, so the descriptor becomes readable as the device's would. */
int xenevtchn_unmask(xenevtchn_handle *h, evtchn_port_t port)
{
    struct sockaddr_un sa;
    struct signal_msg m;
    struct binding *b;

    if (port >= h->nr_local || !(b = h->by_local[port])) {
        errno = EINVAL;
        return -1;
    }
    b->masked = false;
    if (!b->pending)
        return 0;
    b->pending = false;
    m.domid = b->domid;
    m.port = b->remote;
    if (unix_addr(&sa, h->dir, "evtchn") != 0 ||
        sendto(h->fd, &m, sizeof(m), MSG_DONTWAIT, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        b->redeliver_next = h->redeliver;
        h->redeliver = b;
    }
    return 0;
}

/* Signal the guest: { domid, remote port } to guest-<domid>, best effort. */
int xenevtchn_notify(xenevtchn_handle *h, evtchn_port_t port)
{
    struct sockaddr_un sa;
    struct signal_msg m;
    struct binding *b;
    char name[32];

    if (port >= h->nr_local || !(b = h->by_local[port])) {
        errno = EINVAL;
        return -1;
    }
    if (b->domid == VIRQ_DOMID)
        return 0; /* nobody listens on the other side of a VIRQ */
    m.domid = b->domid;
    m.port = b->remote;
    snprintf(name, sizeof(name), "guest-%u", b->domid);
    if (unix_addr(&sa, h->dir, name) == 0)
        (void)sendto(h->fd, &m, sizeof(m), MSG_DONTWAIT, (struct sockaddr *)&sa, sizeof(sa));
    return 0; /* a missing or full guest socket loses the signal silently */
}

/* ------------------------------------- libxengnttab, libxenforeignmemory */

/* Both handles only remember the directory. */
struct dir_handle {
    char *dir;
};

struct xengntdev_handle {
    struct dir_handle d;
};

struct xenforeignmemory_handle {
    struct dir_handle d;
};

static struct dir_handle *dir_handle_open(void)
{
    struct dir_handle *h = calloc(1, sizeof(*h));

    if (!h) {
        errno = ENOMEM;
        return NULL;
    }
    h->dir = fake_dir();
    if (!h->dir) {
        free(h);
        return NULL;
    }
    return h;
}

static void dir_handle_close(struct dir_handle *h)
{
    if (h) {
        free(h->dir);
        free(h);
    }
}

xengnttab_handle *xengnttab_open(struct xentoollog_logger *logger, unsigned int flags)
{
    (void)logger;
    (void)flags;
    return (xengnttab_handle *)dir_handle_open();
}

int xengnttab_close(xengnttab_handle *h)
{
    dir_handle_close(h ? &h->d : NULL);
    return 0;
}

int xengnttab_set_max_grants(xengnttab_handle *h, uint32_t nr_grants)
{
    (void)h;
    (void)nr_grants;
    return 0;
}

void *xengnttab_map_grant_ref(xengnttab_handle *h, uint32_t domid, uint32_t ref, int prot)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/grant-%u-%u", h->d.dir, domid, ref);
    return map_file(path, PAGE, prot);
}

int xengnttab_unmap(xengnttab_handle *h, void *start, uint32_t count)
{
    (void)h;
    return munmap(start, (size_t)count * PAGE);
}

xenforeignmemory_handle *xenforeignmemory_open(struct xentoollog_logger *logger,
                                               unsigned int flags)
{
    (void)logger;
    (void)flags;
    return (xenforeignmemory_handle *)dir_handle_open();
}

int xenforeignmemory_close(xenforeignmemory_handle *h)
{
    dir_handle_close(h ? &h->d : NULL);
    return 0;
}

/*
 * Map `pages` gfns side by side.  With `err`, each page's errno goes there
 * and failed pages stay inaccessible; without it, any failure undoes all.
 */
void *xenforeignmemory_map(xenforeignmemory_handle *h, uint32_t dom, int prot, size_t pages,
                           const xen_pfn_t arr[], int err[])
{
    char path[PATH_MAX];
    uint8_t *base;
    size_t i;
    int fd, failed = 0, first_errno = 0;

    if (pages == 0) {
        errno = EINVAL;
        return NULL;
    }
    base = mmap(NULL, pages * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    for (i = 0; i < pages; i++) {
        int e = 0;

        snprintf(path, sizeof(path), "%s/gfn-%u-%lu", h->d.dir, dom, (unsigned long)arr[i]);
        fd = real_open(path, (prot & PROT_WRITE) ? O_RDWR : O_RDONLY, 0);
        if (fd < 0)
            e = errno;
        else {
            if (mmap(base + i * PAGE, PAGE, prot, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED)
                e = errno;
            close(fd);
        }
        if (err)
            err[i] = e;
        if (e && !failed++)
            first_errno = e;
    }
    if (failed && !err) {
        munmap(base, pages * PAGE);
        errno = first_errno;
        return NULL;
    }
    return base;
}

int xenforeignmemory_unmap(xenforeignmemory_handle *h, void *addr, size_t pages)
{
    (void)h;
    return munmap(addr, pages * PAGE);
}

/* --------------------------------------------------------- libxenctrl */

struct xc_interface_core {
    const uint8_t *domains;
};

xc_interface *xc_interface_open(xentoollog_logger *logger, xentoollog_logger *dombuild_logger,
                                unsigned int open_flags)
{
    xc_interface *h;
    char *dir;

    (void)logger;
    (void)dombuild_logger;
    (void)open_flags;
    h = calloc(1, sizeof(*h));
    if (!h) {
        errno = ENOMEM;
        return NULL;
    }
    dir = fake_dir();
    if (dir)
        h->domains = map_domains(dir);
    free(dir); /* free() keeps errno */
    if (!h->domains) {
        free(h);
        return NULL;
    }
    return h;
}

int xc_interface_close(xc_interface *xch)
{
    if (xch) {
        munmap((void *)xch->domains, NR_DOMIDS);
        free(xch);
    }
    return 0;
}

/* The next existing domid >= `from`, or NR_DOMIDS if none. */
static uint32_t next_domain(const xc_interface *xch, uint32_t from)
{
    while (from < NR_DOMIDS && xch->domains[from] == DOM_NONE)
        from++;
    return from;
}

int xc_domain_getinfolist(xc_interface *xch, uint32_t first_domain, unsigned int max_domains,
                          xc_domaininfo_t *info)
{
    unsigned int n = 0;
    uint32_t d;

    for (d = next_domain(xch, first_domain); d < NR_DOMIDS && n < max_domains;
         d = next_domain(xch, d + 1), n++) {
        uint8_t s = xch->domains[d];

        memset(&info[n], 0, sizeof(info[n]));
        info[n].domain = (domid_t)d;
        info[n].flags = s == DOM_RUNNING ? XEN_DOMINF_running
                      : s == DOM_SHUTDOWN ? XEN_DOMINF_shutdown
                      : s == DOM_DYING ? XEN_DOMINF_dying : 0;
    }
    return (int)n;
}

int xc_domain_getinfo(xc_interface *xch, uint32_t first_domid, unsigned int max_doms,
                      xc_dominfo_t *info)
{
    unsigned int n = 0;
    uint32_t d;

    for (d = next_domain(xch, first_domid); d < NR_DOMIDS && n < max_doms;
         d = next_domain(xch, d + 1), n++) {
        uint8_t s = xch->domains[d];

        memset(&info[n], 0, sizeof(info[n]));
        info[n].domid = d;
        info[n].running = s == DOM_RUNNING;
        info[n].shutdown = s == DOM_SHUTDOWN;
        info[n].dying = s == DOM_DYING;
    }
    return (int)n;
}

/* ---------------------------------------- open() of dom0's ring files */

/*
 * For dom0's ring files: the replacement path in `buf`, or NULL with errno
 * ENOENT when FAKEXEN_DIR is unset.  Any other path is returned unchanged.
 */
static const char *redirect(const char *path, char *buf, size_t size)
{
    const char *name, *dir;

    if (!path)
        return path;
    if (!strcmp(path, "/dev/xen/xsd_kva") || !strcmp(path, "/proc/xen/xsd_kva"))
        name = "xsd_kva";
    else if (!strcmp(path, "/proc/xen/xsd_port"))
        name = "xsd_port";
    else
        return path;
    dir = getenv("FAKEXEN_DIR");
    if (!dir || !*dir) {
        errno = ENOENT;
        return NULL;
    }
    snprintf(buf, size, "%s/%s", dir, name);
    return buf;
}

/* The mode argument, present only when the flags create a file. */
#define MODE_ARG(flags, mode)                                   \
    do {                                                        \
        if ((flags) & (O_CREAT | O_TMPFILE)) {                  \
            va_list ap;                                         \
            va_start(ap, flags);                                \
            mode = va_arg(ap, mode_t);                          \
            va_end(ap);                                         \
        }                                                       \
    } while (0)

/* Look up the next definition of `name` once, into `fn`. */
#define NEXT(fn, name)                                          \
    do {                                                        \
        if (!fn)                                                \
            fn = (__typeof__(fn))dlsym(RTLD_NEXT, name);        \
    } while (0)

int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);

int open(const char *path, int flags, ...)
{
    static int (*fn)(const char *, int, ...);
    char buf[PATH_MAX];
    mode_t mode = 0;

    MODE_ARG(flags, mode);
    NEXT(fn, "open");
    path = redirect(path, buf, sizeof(buf));
    return path ? fn(path, flags, mode) : -1;
}

int open64(const char *path, int flags, ...)
{
    static int (*fn)(const char *, int, ...);
    char buf[PATH_MAX];
    mode_t mode = 0;

    MODE_ARG(flags, mode);
    NEXT(fn, "open64");
    path = redirect(path, buf, sizeof(buf));
    return path ? fn(path, flags, mode) : -1;
}

int openat(int dirfd, const char *path, int flags, ...)
{
    static int (*fn)(int, const char *, int, ...);
    char buf[PATH_MAX];
    mode_t mode = 0;

    MODE_ARG(flags, mode);
    NEXT(fn, "openat");
    path = redirect(path, buf, sizeof(buf));
    return path ? fn(dirfd, path, flags, mode) : -1;
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    static int (*fn)(int, const char *, int, ...);
    char buf[PATH_MAX];
    mode_t mode = 0;

    MODE_ARG(flags, mode);
    NEXT(fn, "openat64");
    path = redirect(path, buf, sizeof(buf));
    return path ? fn(dirfd, path, flags, mode) : -1;
}

/* What _FORTIFY_SOURCE builds call instead of open(). */
int __open_2(const char *path, int flags)
{
    static int (*fn)(const char *, int);
    char buf[PATH_MAX];

    NEXT(fn, "__open_2");
    path = redirect(path, buf, sizeof(buf));
    return path ? fn(path, flags) : -1;
}

int __open64_2(const char *path, int flags)
{
    static int (*fn)(const char *, int);
    char buf[PATH_MAX];

    NEXT(fn, "__open64_2");
    path = redirect(path, buf, sizeof(buf));
    return path ? fn(path, flags) : -1;
}
