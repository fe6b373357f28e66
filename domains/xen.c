/* The Xen libraries, behind the small API of xen.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xenctrl.h>
#include <xenevtchn.h>
#include <xenforeignmemory.h>
#include <xengnttab.h>
#include <xen/grant_table.h>

#include "log/log.h"
#include "domains/xen.h"

#define PAGE_SIZE 4096

struct xen {
	xenevtchn_handle *evtchn;
	xengnttab_handle *gnttab;
	xenforeignmemory_handle *fmem;	/* NULL: no fallback mapping */
	xc_interface *xc;
};

struct xen *xen_open(void)
{
	struct xen *x = calloc(1, sizeof(*x));
	int err, fl;

	if (!x)
		return NULL;
	/* The library loggers would print to stderr: pass NULL (silent). */
	x->evtchn = xenevtchn_open(NULL, 0);
	if (!x->evtchn)
		goto fail;
	/* /dev/xen/evtchn blocks a read when nothing is pending: the loop
	 * drains it until EAGAIN, so it must not. */
	fl = fcntl(xenevtchn_fd(x->evtchn), F_GETFL);
	if (fl < 0 ||
	    fcntl(xenevtchn_fd(x->evtchn), F_SETFL, fl | O_NONBLOCK) < 0)
		goto fail;
	x->gnttab = xengnttab_open(NULL, 0);
	if (!x->gnttab)
		goto fail;
	x->xc = xc_interface_open(NULL, NULL, 0);
	if (!x->xc)
		goto fail;
	x->fmem = xenforeignmemory_open(NULL, 0);
	if (!x->fmem)
		log_warn("no foreign mapping (%s): guests need their grant",
			 strerror(errno));
	return x;

fail:
	err = errno ? errno : ENODEV;
	xen_close(x);
	errno = err;
	return NULL;
}

void xen_close(struct xen *x)
{
	if (!x)
		return;
	if (x->fmem)
		xenforeignmemory_close(x->fmem);
	if (x->xc)
		xc_interface_close(x->xc);
	if (x->gnttab)
		xengnttab_close(x->gnttab);
	if (x->evtchn)
		xenevtchn_close(x->evtchn);
	free(x);
}

int xen_evtchn_fd(struct xen *x)
{
	return xenevtchn_fd(x->evtchn);
}

int xen_evtchn_bind(struct xen *x, unsigned int domid, unsigned int port)
{
	xenevtchn_port_or_error_t p;

	p = xenevtchn_bind_interdomain(x->evtchn, domid, port);
	return p < 0 ? -(errno ? errno : EINVAL) : (int)p;
}

int xen_evtchn_bind_dom_exc(struct xen *x)
{
	xenevtchn_port_or_error_t p = xenevtchn_bind_virq(x->evtchn,
							   VIRQ_DOM_EXC);

	return p < 0 ? -(errno ? errno : EINVAL) : (int)p;
}

void xen_evtchn_unbind(struct xen *x, int port)
{
	if (port > 0)
		xenevtchn_unbind(x->evtchn, (evtchn_port_t)port);
}

int xen_evtchn_pending(struct xen *x)
{
	xenevtchn_port_or_error_t p = xenevtchn_pending(x->evtchn);

	if (p < 0)
		return -1;
	/* Unmask now: a signal arriving while we serve the ring is kept. */
	xenevtchn_unmask(x->evtchn, (evtchn_port_t)p);
	return (int)p;
}

void xen_evtchn_notify(struct xen *x, int port)
{
	if (port > 0)
		xenevtchn_notify(x->evtchn, (evtchn_port_t)port);
}

int xen_map_ring(struct xen *x, unsigned int domid, uint64_t gfn,
		 struct xen_ring *ring)
{
	int grant_err, err = 0;

	ring->page = xengnttab_map_grant_ref(x->gnttab, domid,
					     GNTTAB_RESERVED_XENSTORE,
					     PROT_READ | PROT_WRITE);
	if (ring->page) {
		ring->kind = XEN_MAP_GRANT;
		return 0;
	}
	grant_err = errno ? errno : EINVAL;
	if (x->fmem) {
		xen_pfn_t pfn = (xen_pfn_t)gfn;

		ring->page = xenforeignmemory_map(x->fmem, domid,
						  PROT_READ | PROT_WRITE, 1,
						  &pfn, &err);
		if (ring->page && !err) {
			ring->kind = XEN_MAP_FOREIGN;
			return 0;
		}
		if (ring->page)
			xenforeignmemory_unmap(x->fmem, ring->page, 1);
		ring->page = NULL;
	}
	ring->kind = XEN_MAP_NONE;
	return -grant_err;
}

/* Read a small decimal file such as /proc/xen/xsd_port. */
static int read_uint_file(const char *path, unsigned int *out)
{
	char buf[32];
	ssize_t n;
	char *end;
	unsigned long v;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EINVAL;
	buf[n] = '\0';
	errno = 0;
	v = strtoul(buf, &end, 10);
	if (errno || end == buf || v == 0 || v > UINT32_MAX)
		return -EINVAL;
	*out = (unsigned int)v;
	return 0;
}

int xen_map_dom0_ring(struct xen_ring *ring, unsigned int *port)
{
	static const char *const kva[] = {
		"/dev/xen/xsd_kva", "/proc/xen/xsd_kva",
	};
	int fd = -1, err;

	for (size_t i = 0; i < sizeof(kva) / sizeof(kva[0]) && fd < 0; i++)
		fd = open(kva[i], O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -ENOENT;
	ring->page = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
			  fd, 0);
	err = errno;
	close(fd);
	if (ring->page == MAP_FAILED) {
		ring->page = NULL;
		return -err;
	}
	err = read_uint_file("/proc/xen/xsd_port", port);
	if (err) {
		munmap(ring->page, PAGE_SIZE);
		ring->page = NULL;
		return err;
	}
	ring->kind = XEN_MAP_KVA;
	return 0;
}

void xen_unmap_ring(struct xen *x, struct xen_ring *ring)
{
	switch (ring->kind) {
	case XEN_MAP_GRANT:
		xengnttab_unmap(x->gnttab, ring->page, 1);
		break;
	case XEN_MAP_FOREIGN:
		xenforeignmemory_unmap(x->fmem, ring->page, 1);
		break;
	case XEN_MAP_KVA:
		munmap(ring->page, PAGE_SIZE);
		break;
	case XEN_MAP_NONE:
		break;
	}
	ring->page = NULL;
	ring->kind = XEN_MAP_NONE;
}

enum xen_domain_state xen_domain_state(struct xen *x, unsigned int domid)
{
	xc_domaininfo_t info;
	int n = xc_domain_getinfolist(x->xc, domid, 1, &info);

	if (n < 0)
		return XEN_DOMAIN_UNKNOWN;
	/* The list starts at the first domain >= domid. */
	if (n == 0 || info.domain != domid)
		return XEN_DOMAIN_GONE;
	if (info.flags & XEN_DOMINF_dying)
		return XEN_DOMAIN_DYING;
	if (info.flags & XEN_DOMINF_shutdown)
		return XEN_DOMAIN_SHUTDOWN;
	return XEN_DOMAIN_RUNNING;
}
