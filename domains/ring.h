/*
 * ring: the two byte queues of a guest's Xenstore ring page
 * (docs/misc/xenstore-ring.txt).
 *
 * The page is shared with a guest that may be hostile: every index is read
 * once, checked, and never trusted past that check.  Indices run free
 * modulo 2^32; byte x of a stream lives at x % XENSTORE_RING_SIZE.  The
 * functions only move bytes and indices; signalling is the caller's.
 */
#ifndef XS_RING_H
#define XS_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <xen/io/xs_wire.h>

/*
 * The dom0less event channel field, after `error` (newer xs_wire.h names
 * it evtchn_port; Debian's 4.17 header does not have it yet).
 */
#define RING_EVTCHN_PORT_OFFSET \
	(offsetof(struct xenstore_domain_interface, error) + sizeof(uint32_t))

/*
 * Copy up to len request bytes out of the ring and consume them.  Returns
 * the number copied, or -1 if the indices are impossible (more than a
 * ring's worth of unread bytes): the caller must stop serving the ring.
 */
ptrdiff_t ring_read(struct xenstore_domain_interface *intf, void *buf,
		    size_t len);

/*
 * The same in two steps, so a request leaves the ring only once it has
 * been answered (a daemon that dies in between finds it again on
 * restart): ring_peek copies up to len bytes from skip bytes past the
 * consumer index without moving it (-1: impossible indices), and
 * ring_consume moves it over n bytes already peeked.
 */
ptrdiff_t ring_peek(const struct xenstore_domain_interface *intf, size_t skip,
		    void *buf, size_t len);
void ring_consume(struct xenstore_domain_interface *intf, size_t n);

/* Request bytes waiting in the ring (0 when the indices are impossible). */
size_t ring_readable(const struct xenstore_domain_interface *intf);

/*
 * Copy up to len reply bytes into the ring's free space and publish them.
 * Returns the number copied, or -1 if the indices are impossible.
 */
ptrdiff_t ring_write(struct xenstore_domain_interface *intf, const void *buf,
		     size_t len);

/* Empty both queues (reconnection and INTRODUCE). */
void ring_reset(struct xenstore_domain_interface *intf);

/* The dom0less event channel the guest's page names, or 0. */
uint32_t ring_evtchn_port(const struct xenstore_domain_interface *intf);

#endif
