/*
 * Ring byte queues.  The ordering rules: read the producer index, then a
 * read barrier before reading the bytes it covers; finish reading (or
 * writing) the bytes, then a full barrier before moving our index, so the
 * guest never sees space freed or data published before it really is.
 */
#include <string.h>

#include "domains/ring.h"

#define RING_MASK(i) ((i) & (XENSTORE_RING_SIZE - 1))

/* The guest writes these at any time: read each exactly once. */
static inline uint32_t load_index(const XENSTORE_RING_IDX *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void store_index(XENSTORE_RING_IDX *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

#define read_barrier() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define full_barrier() __atomic_thread_fence(__ATOMIC_SEQ_CST)

size_t ring_readable(const struct xenstore_domain_interface *intf)
{
	uint32_t cons = load_index(&intf->req_cons);
	uint32_t prod = load_index(&intf->req_prod);
	uint32_t used = prod - cons;

	return used > XENSTORE_RING_SIZE ? 0 : used;
}

ptrdiff_t ring_read(struct xenstore_domain_interface *intf, void *buf,
		    size_t len)
{
	uint32_t cons = load_index(&intf->req_cons);
	uint32_t prod = load_index(&intf->req_prod);
	uint32_t avail = prod - cons;
	size_t done = 0;

	read_barrier();
	if (avail > XENSTORE_RING_SIZE)
		return -1;
	if (len > avail)
		len = avail;
	while (done < len) {
		/* One contiguous piece, up to the end of the buffer. */
		size_t off = RING_MASK(cons + done);
		size_t n = XENSTORE_RING_SIZE - off;

		if (n > len - done)
			n = len - done;
		memcpy((char *)buf + done, intf->req + off, n);
		done += n;
	}
	full_barrier();
	store_index(&intf->req_cons, cons + (uint32_t)done);
	return (ptrdiff_t)done;
}

ptrdiff_t ring_write(struct xenstore_domain_interface *intf, const void *buf,
		     size_t len)
{
	uint32_t cons = load_index(&intf->rsp_cons);
	uint32_t prod = load_index(&intf->rsp_prod);
	uint32_t used = prod - cons;
	size_t room, done = 0;

	full_barrier();	/* the guest's reads of the bytes before cons are over */
	if (used > XENSTORE_RING_SIZE)
		return -1;
	room = XENSTORE_RING_SIZE - used;
	if (len > room)
		len = room;
	while (done < len) {
		size_t off = RING_MASK(prod + done);
		size_t n = XENSTORE_RING_SIZE - off;

		if (n > len - done)
			n = len - done;
		memcpy(intf->rsp + off, (const char *)buf + done, n);
		done += n;
	}
	full_barrier();	/* the bytes are in place before the guest sees prod */
	store_index(&intf->rsp_prod, prod + (uint32_t)done);
	return (ptrdiff_t)done;
}

void ring_reset(struct xenstore_domain_interface *intf)
{
	store_index(&intf->req_cons, 0);
	store_index(&intf->req_prod, 0);
	store_index(&intf->rsp_cons, 0);
	store_index(&intf->rsp_prod, 0);
	full_barrier();
}

uint32_t ring_evtchn_port(const struct xenstore_domain_interface *intf)
{
	const uint32_t *p = (const uint32_t *)((const char *)intf +
					       RING_EVTCHN_PORT_OFFSET);

	return __atomic_load_n(p, __ATOMIC_RELAXED);
}
