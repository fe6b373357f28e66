/*
 * tests/unit: a hypervisor the suite controls, behind domains/xen.h.
 *
 * Defines every function of domains/xen.h, so a suite that includes this
 * file (once) links without domains/xen.c (the Makefile links the modules
 * from an archive).  The real domains/ code runs above it unchanged.
 *
 * Domains: a state per domid (GONE until the test says otherwise) and a
 * ring page per domid, made by xd_guest().  Event channels: local ports
 * from 1 upward, never reused; binding a (domid, remote port) already
 * bound, port 0 or a domain set to fail is EINVAL, a domain that does not
 * exist ESRCH, as in Xen.  A pending port is an int written into a pipe,
 * whose read end is the fd the daemon watches: xd_signal() is the guest
 * (or VIRQ_DOM_EXC) firing.  Notifications to a guest are counted.
 */
#ifndef XS_TESTS_UNIT_XEN_DOUBLE_H
#define XS_TESTS_UNIT_XEN_DOUBLE_H

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "tests/unit/unit.h"
#include "domains/domain.h"
#include "domains/ring.h"
#include "domains/xen.h"

#define XD_PORTS 64

struct xen {
	int pipe[2];		/* [0]: the evtchn fd; [1]: signals go in */
};

struct xd_port {
	bool bound;
	bool virq;
	unsigned int domid, remote;
};

static struct {
	bool no_xen;			/* xen_open fails (ENOENT) */
	bool query_fails;		/* states are XEN_DOMAIN_UNKNOWN */
	struct xen *x;			/* the open one, or NULL */
	enum xen_domain_state state[DOMAIN_ID_LIMIT];
	struct xenstore_domain_interface *page[DOMAIN_ID_LIMIT];
	bool fail_bind[DOMAIN_ID_LIMIT];
	unsigned int mapped[DOMAIN_ID_LIMIT];	/* mappings now held */
	unsigned int notified[DOMAIN_ID_LIMIT];	/* guest signals sent */
	struct xd_port port[XD_PORTS];
	int next_port;
} xd;

/* Start from a hypervisor with no domains (call before domains_new). */
static inline void xd_reset(void)
{
	for (unsigned int i = 0; i < DOMAIN_ID_LIMIT; i++)
		free(xd.page[i]);
	memset(&xd, 0, sizeof(xd));
	for (unsigned int i = 0; i < DOMAIN_ID_LIMIT; i++)
		xd.state[i] = XEN_DOMAIN_GONE;
	xd.state[0] = XEN_DOMAIN_RUNNING;
	xd.next_port = 1;
}

/* A running guest with a zeroed ring page. */
static inline struct xenstore_domain_interface *xd_guest(unsigned int domid)
{
	if (!xd.page[domid]) {
		xd.page[domid] = aligned_alloc(4096, 4096);
		ck_assert_ptr_nonnull(xd.page[domid]);
		memset(xd.page[domid], 0, 4096);
	}
	xd.state[domid] = XEN_DOMAIN_RUNNING;
	return xd.page[domid];
}

/* The local port bound to (domid, remote), or 0. */
static inline int xd_local_port(unsigned int domid, unsigned int remote)
{
	for (int p = 1; p < XD_PORTS; p++)
		if (xd.port[p].bound && !xd.port[p].virq &&
		    xd.port[p].domid == domid && xd.port[p].remote == remote)
			return p;
	return 0;
}

static inline int xd_virq_port(void)
{
	for (int p = 1; p < XD_PORTS; p++)
		if (xd.port[p].bound && xd.port[p].virq)
			return p;
	return 0;
}

/* Make local port p pending, as a signal from its remote end does. */
static inline void xd_signal(int p)
{
	ck_assert_int_gt(p, 0);
	ck_assert_ptr_nonnull(xd.x);
	ck_assert_int_eq(write(xd.x->pipe[1], &p, sizeof(p)), (int)sizeof(p));
}

struct xen *xen_open(void)
{
	struct xen *x;

	if (xd.no_xen) {
		errno = ENOENT;
		return NULL;
	}
	x = calloc(1, sizeof(*x));
	ck_assert_ptr_nonnull(x);
	ck_assert_int_eq(pipe2(x->pipe, O_NONBLOCK | O_CLOEXEC), 0);
	xd.x = x;
	return x;
}

void xen_close(struct xen *x)
{
	close(x->pipe[0]);
	close(x->pipe[1]);
	free(x);
	xd.x = NULL;
}

int xen_evtchn_fd(struct xen *x)
{
	return x->pipe[0];
}

static inline int xd_new_port(unsigned int domid, unsigned int remote,
			      bool virq)
{
	int p = xd.next_port++;

	ck_assert_int_lt(p, XD_PORTS);
	xd.port[p] = (struct xd_port){ true, virq, domid, remote };
	return p;
}

int xen_evtchn_bind(struct xen *x, unsigned int domid, unsigned int port)
{
	(void)x;
	if (domid >= DOMAIN_ID_LIMIT || xd.state[domid] == XEN_DOMAIN_GONE)
		return -ESRCH;
	if (port == 0 || xd.fail_bind[domid] || xd_local_port(domid, port))
		return -EINVAL;
	return xd_new_port(domid, port, false);
}

int xen_evtchn_bind_dom_exc(struct xen *x)
{
	(void)x;
	return xd_new_port(0, 0, true);
}

void xen_evtchn_unbind(struct xen *x, int port)
{
	(void)x;
	ck_assert_msg(port > 0 && port < XD_PORTS && xd.port[port].bound,
		      "unbind of port %d, not bound", port);
	xd.port[port].bound = false;
}

int xen_evtchn_pending(struct xen *x)
{
	int p;

	if (read(x->pipe[0], &p, sizeof(p)) != (ssize_t)sizeof(p))
		return -1;
	return p;
}

void xen_evtchn_notify(struct xen *x, int port)
{
	(void)x;
	ck_assert_msg(port > 0 && port < XD_PORTS && xd.port[port].bound,
		      "notify of port %d, not bound", port);
	if (!xd.port[port].virq)
		xd.notified[xd.port[port].domid]++;
}

int xen_map_ring(struct xen *x, unsigned int domid, uint64_t gfn,
		 struct xen_ring *ring)
{
	(void)x;
	(void)gfn;	/* the reserved grant is mapped, as on Xen 4.17 */
	if (domid >= DOMAIN_ID_LIMIT || !xd.page[domid] ||
	    xd.state[domid] == XEN_DOMAIN_GONE)
		return -ESRCH;
	ring->page = xd.page[domid];
	ring->kind = XEN_MAP_GRANT;
	xd.mapped[domid]++;
	return 0;
}

int xen_map_dom0_ring(struct xen_ring *ring, unsigned int *port)
{
	(void)ring;
	(void)port;
	return -ENOENT;	/* this dom0 kernel offers none */
}

void xen_unmap_ring(struct xen *x, struct xen_ring *ring)
{
	unsigned int domid;

	(void)x;
	for (domid = 0; domid < DOMAIN_ID_LIMIT; domid++)
		if (xd.page[domid] && ring->page == (void *)xd.page[domid])
			break;
	ck_assert_msg(domid < DOMAIN_ID_LIMIT && xd.mapped[domid],
		      "unmap of a page not mapped");
	xd.mapped[domid]--;
	ring->page = NULL;
	ring->kind = XEN_MAP_NONE;
}

enum xen_domain_state xen_domain_state(struct xen *x, unsigned int domid)
{
	(void)x;
	if (xd.query_fails)
		return XEN_DOMAIN_UNKNOWN;
	return domid < DOMAIN_ID_LIMIT ? xd.state[domid] : XEN_DOMAIN_GONE;
}

/* ---- the guest's side of its ring ---- */

/* Write bytes into domid's request queue (no signal). */
static inline void xd_guest_write(unsigned int domid, const void *p, size_t len)
{
	struct xenstore_domain_interface *intf = xd.page[domid];

	ck_assert_uint_le(intf->req_prod - intf->req_cons + len,
			  XENSTORE_RING_SIZE);
	for (size_t i = 0; i < len; i++)
		intf->req[MASK_XENSTORE_IDX(intf->req_prod++)] =
			((const char *)p)[i];
}

/* Write one request into domid's ring and signal the daemon. */
static inline void xd_guest_send(unsigned int domid, unsigned int remote,
				 uint32_t type, uint32_t req_id, uint32_t tx_id,
				 const void *payload, size_t len)
{
	struct xsd_sockmsg hdr = { .type = type, .req_id = req_id,
				   .tx_id = tx_id, .len = (uint32_t)len };

	xd_guest_write(domid, &hdr, sizeof(hdr));
	xd_guest_write(domid, payload, len);
	xd_signal(xd_local_port(domid, remote));
}

/* Copy n bytes of domid's reply queue (false: fewer are there). */
static inline bool xd_guest_take(unsigned int domid, void *buf, size_t n)
{
	struct xenstore_domain_interface *intf = xd.page[domid];

	if (intf->rsp_prod - intf->rsp_cons < n)
		return false;
	for (size_t i = 0; i < n; i++)
		((char *)buf)[i] = intf->rsp[MASK_XENSTORE_IDX(intf->rsp_cons++)];
	return true;
}

/* Take one whole message the daemon wrote to domid; false if none. */
static inline bool xd_guest_recv(unsigned int domid, struct xsd_sockmsg *hdr,
				 char *buf)
{
	struct xenstore_domain_interface *intf = xd.page[domid];

	if (intf->rsp_prod - intf->rsp_cons < sizeof(*hdr))
		return false;
	ck_assert(xd_guest_take(domid, hdr, sizeof(*hdr)));
	ck_assert_uint_le(hdr->len, XENSTORE_PAYLOAD_MAX);
	ck_assert(xd_guest_take(domid, buf, hdr->len));
	buf[hdr->len] = '\0';
	return true;
}

#endif
