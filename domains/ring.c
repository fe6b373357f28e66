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

/*
 * Copy len bytes between a linear buffer and a ring buffer from stream
 * offset idx on, in at most two pieces (before and after the wrap).
 */
static void copy_from_ring(void *dst, const char *ring, uint32_t idx,
			   size_t len)
{
	size_t off = RING_MASK(idx), first = XENSTORE_RING_SIZE - off;

	if (first > len)
		first = len;
	memcpy(dst, ring + off, first);
	memcpy((char *)dst + first, ring, len - first);
}

static void copy_to_ring(char *ring, uint32_t idx, const void *src,
			 size_t len)
{
	size_t off = RING_MASK(idx), first = XENSTORE_RING_SIZE - off;

	if (first > len)
		first = len;
	memcpy(ring + off, src, first);
	memcpy(ring, (const char *)src + first, len - first);
}

size_t ring_readable(const struct xenstore_domain_interface *intf)
{
	uint32_t cons = load_index(&intf->req_cons);
	uint32_t prod = load_index(&intf->req_prod);
	uint32_t used = prod - cons;

	return used > XENSTORE_RING_SIZE ? 0 : used;
}

ptrdiff_t ring_peek(const struct xenstore_domain_interface *intf, size_t skip,
		    void *buf, size_t len)
{
	uint32_t cons = load_index(&intf->req_cons);
	uint32_t prod = load_index(&intf->req_prod);
	uint32_t avail = prod - cons;

	read_barrier();
	if (avail > XENSTORE_RING_SIZE || skip > avail)
		return -1;
	avail -= (uint32_t)skip;
	if (len > avail)
		len = avail;
	copy_from_ring(buf, intf->req, cons + (uint32_t)skip, len);
	return (ptrdiff_t)len;
}

void ring_consume(struct xenstore_domain_interface *intf, size_t n)
{
	uint32_t cons = load_index(&intf->req_cons);

	full_barrier();	/* done with the bytes before the guest may reuse them */
	store_index(&intf->req_cons, cons + (uint32_t)n);
	/* Our next look at req_prod comes after the guest can see this: a
	 * guest that wrote meanwhile and found us behind did not signal
	 * (Linux's xenbus does not), so that look must see its bytes. */
	full_barrier();
}

ptrdiff_t ring_read(struct xenstore_domain_interface *intf, void *buf,
		    size_t len)
{
	ptrdiff_t n = ring_peek(intf, 0, buf, len);

	if (n > 0)
		ring_consume(intf, (size_t)n);
	return n;
}

ptrdiff_t ring_write(struct xenstore_domain_interface *intf, const void *buf,
		     size_t len)
{
	uint32_t cons, prod, used;
	size_t room;

	/* Our last rsp_prod is visible before we read rsp_cons: a guest that
	 * emptied a ring it found full signals us, one that found it not
	 * full does not, so we must see its rsp_cons if it missed our
	 * rsp_prod. */
	full_barrier();
	cons = load_index(&intf->rsp_cons);
	prod = load_index(&intf->rsp_prod);
	used = prod - cons;
	full_barrier();	/* the guest's reads of the bytes before cons are over */
	if (used > XENSTORE_RING_SIZE)
		return -1;
	room = XENSTORE_RING_SIZE - used;
	if (len > room)
		len = room;
	copy_to_ring(intf->rsp, prod, buf, len);
	full_barrier();	/* the bytes are in place before the guest sees prod */
	store_index(&intf->rsp_prod, prod + (uint32_t)len);
	return (ptrdiff_t)len;
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
