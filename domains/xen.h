/*
 * xen: the daemon's only contact with the hypervisor.
 *
 * Wraps libxenevtchn (event channels), libxengnttab and libxenforeignmemory
 * (mapping a guest's ring page) and libxenctrl (domain state), so the rest
 * of the daemon sees small calls with errno-style results.  No other file
 * includes a Xen library header.  Tests preload tests/fakexen over the
 * same library functions.
 */
#ifndef XS_XEN_H
#define XS_XEN_H

#include <stdbool.h>
#include <stdint.h>

struct xen;

/* How a ring page was mapped, so it is unmapped the same way. */
enum xen_map_kind { XEN_MAP_NONE, XEN_MAP_GRANT, XEN_MAP_FOREIGN, XEN_MAP_KVA };

struct xen_ring {
	void *page;
	enum xen_map_kind kind;
};

enum xen_domain_state {
	XEN_DOMAIN_UNKNOWN,	/* the query failed: ask again later */
	XEN_DOMAIN_GONE,	/* no such domain */
	XEN_DOMAIN_RUNNING,
	XEN_DOMAIN_SHUTDOWN,	/* shut down, not yet destroyed */
	XEN_DOMAIN_DYING,	/* being destroyed */
};

/*
 * Open the Xen interfaces.  NULL when there is no hypervisor (errno says
 * why): the daemon then serves its socket only.
 */
struct xen *xen_open(void);
void xen_close(struct xen *x);

/* The fd that is readable when some event channel is pending. */
int xen_evtchn_fd(struct xen *x);
/* Local port bound to the remote domain's port, or -errno. */
int xen_evtchn_bind(struct xen *x, unsigned int domid, unsigned int port);
/* Local port for VIRQ_DOM_EXC, or -errno. */
int xen_evtchn_bind_dom_exc(struct xen *x);
void xen_evtchn_unbind(struct xen *x, int port);
/* The next pending local port (unmasked again), or -1 when none. */
int xen_evtchn_pending(struct xen *x);
void xen_evtchn_notify(struct xen *x, int port);

/*
 * Map a guest's ring: its reserved Xenstore grant, else the frame gfn by
 * foreign mapping.  0 or -errno.
 */
int xen_map_ring(struct xen *x, unsigned int domid, uint64_t gfn,
		 struct xen_ring *ring);
/*
 * Map dom0's own ring (xsd_kva) and read its port.  0, or -ENOENT when
 * this kernel has none, or another -errno.
 */
int xen_map_dom0_ring(struct xen_ring *ring, unsigned int *port);
void xen_unmap_ring(struct xen *x, struct xen_ring *ring);

enum xen_domain_state xen_domain_state(struct xen *x, unsigned int domid);

#endif
