/*
 * domains/ internals: the table and one domain, shared by its files and by
 * nothing else.
 *
 *   domain.c    the table, the lifecycle (INTRODUCE to release, VIRQ_DOM_EXC,
 *               dom0's own ring) and the management operations
 *   ring_conn.c the ring transport: a domain's connection over its page
 *   restore.c   what a restart or a live update needs, in the database
 *   ring.c      the two byte queues of a page;  xen.c  the Xen libraries
 */
#ifndef XS_DOMAIN_IMPL_H
#define XS_DOMAIN_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <uthash.h>

#include "conn/conn.h"
#include "domains/domain.h"
#include "domains/ring.h"
#include "domains/xen.h"

struct domain {
	struct domains *ds;
	unsigned int domid;
	uint32_t target;		/* SET_TARGET, or DOMID_NONE */
	unsigned int features;		/* offered in the ring page */
	bool introduced;		/* else only known for its features */
	bool shutdown_seen;		/* @releaseDomain fired for the shutdown */
	bool reading;			/* the connection takes requests */
	bool in_io;			/* domain_io is on the stack */
	bool doomed;			/* released from inside its own pass */
	struct xen_ring ring;		/* mapping, owned */
	uint64_t gfn;			/* as introduced: to map it again */
	unsigned int remote_port;	/* the guest's end of the channel */
	int port;			/* local event channel port, or 0 */
	/* Request bytes copied out of the ring beyond its consumer index:
	 * a request leaves the ring only once handled (and committed), so
	 * a daemon that dies before finds it there again. */
	size_t peeked;
	size_t in_consumed;		/* bytes at the front of conn->in that
					 * already left the ring (see below) */
	bool input_saved;		/* a #input record may exist */
	struct evbuffer *input_rec;	/* that record as last put, for a
					 * rewrite to put again (NULL: none
					 * worth keeping) */
	uint64_t handled_seen;		/* conn->in_handled when last looked */
	struct conn *conn;		/* NULL when not served (error) */
	struct event *io;		/* zero-timeout timer: serve the ring */
	UT_hash_handle hh;		/* ds->by_id */
	UT_hash_handle hh_port;		/* ds->by_port, while port > 0 */
};

struct domains {
	struct event_base *base;
	struct db *db;			/* NULL: nothing persists */
	unsigned int master_domid;	/* whose ring is xsd_kva */
	const struct domain_hooks *up;	/* the owner's; it outlives us */
	struct xen *xen;		/* NULL: no hypervisor */
	struct event *evtchn_ev;	/* the event channel fd */
	struct event *check_ev;		/* zero-timeout timer: VIRQ_DOM_EXC */
	int virq_port;
	struct domain *by_id;		/* every domain, owned */
	struct domain *by_port;
};

/* Request bytes taken from a ring ahead of handling: one whole packet. */
#define DOMAIN_INPUT_MAX (WIRE_HDR_LEN + XENSTORE_PAYLOAD_MAX)

static inline struct xenstore_domain_interface *intf_of(const struct domain *d)
{
	return d->ring.page;
}

/* Serve d's ring on the next loop turn. */
static inline void schedule_io(struct domain *d)
{
	static const struct timeval now = { 0, 0 };

	evtimer_add(d->io, &now);
}

/* domain.c */
struct domain *find_domain(struct domains *ds, unsigned int domid);
struct domain *domain_alloc(struct domains *ds, unsigned int domid);
/* Free a domain never served (a failed INTRODUCE or dom0 ring). */
void domain_discard(struct domain *d);
/* Bind d to local port (0 or less: none), releasing the one it had.
 * 0, or -ENOMEM: port released, d has none. */
int set_port(struct domain *d, int port);
void signal_guest(struct domain *d);
void set_error(struct domain *d, uint32_t error);
bool domain_privileged(const struct domains *ds, unsigned int domid);
/* Forget d: with gone, what the tree says of it too (see domain.c). */
void domain_destroy(struct domain *d, bool gone);

/* ring_conn.c */
extern const struct conn_transport ring_transport;
int domain_connect(struct domain *d);
void domain_disconnect(struct domain *d, const char *why);
/* Serve the ring from scratch: reset, features, a fresh connection. */
int start_ring(struct domain *d);
void domain_io(evutil_socket_t fd, short what, void *arg);
/* Send what the connection released: its handled requests off the ring,
 * its replies into it, one signal if the ring moved (moved: the caller's
 * pass moved it already). */
void ring_release(struct domain *d, bool moved);
/* After a restart: the saved start of a request that had left the ring. */
void restore_input(struct domain *d);

/* restore.c */
void save_domain(struct domain *d);
/* The "#input" record: bytes (the start of a request), ending at ring
 * index end; kept as d->input_rec, and put when put is true. */
void save_input(struct domain *d, uint32_t end, struct evbuffer *bytes,
		bool put);
void forget_input(struct domain *d);
void forget_record(struct domains *ds, unsigned int domid);

#endif
