/*
 * The domain table and the lifecycle of a domain: INTRODUCE, RELEASE,
 * RESUME, SET_TARGET, the features, dom0's own ring, and the check of
 * VIRQ_DOM_EXC that finds domains shut down or dead.  The ring itself is
 * ring_conn.c's; what survives a restart, restore.c's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "domains/domain_impl.h"
#include "log/log.h"

/* Pending event channel ports taken per callback before others run. */
#define EVTCHN_BATCH 256

static const struct timeval zero_tv = { 0, 0 };

/* ds may be NULL (an in-process server without a domain table). */
struct domain *find_domain(struct domains *ds, unsigned int domid)
{
	struct domain *d;

	if (!ds)
		return NULL;
	HASH_FIND(hh, ds->by_id, &domid, sizeof(domid), d);
	return d;
}

struct domain *domain_alloc(struct domains *ds, unsigned int domid)
{
	struct domain *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->io = evtimer_new(ds->base, domain_io, d);
	if (!d->io) {
		free(d);
		return NULL;
	}
	d->ds = ds;
	d->domid = domid;
	d->target = DOMID_NONE;
	d->features = DOMAIN_FEATURES_ALL;
	HASH_ADD(hh, ds->by_id, domid, sizeof(d->domid), d);
	if (!ds->by_id) {
		/* uthash could not make the table (HASH_NONFATAL_OOM). */
		event_free(d->io);
		free(d);
		return NULL;
	}
	return d;
}

void domain_discard(struct domain *d)
{
	HASH_DELETE(hh, d->ds->by_id, d);
	event_free(d->io);
	if (d->input_rec)
		evbuffer_free(d->input_rec);
	free(d);
}

/* A known domain that exists in Xen (features may be set before INTRODUCE). */
static struct domain *find_or_alloc_existing(struct domains *ds,
					     unsigned int domid)
{
	struct domain *d = find_domain(ds, domid);

	if (d)
		return d;
	if (!ds || !ds->xen || domid >= DOMAIN_ID_LIMIT)
		return NULL;
	switch (xen_domain_state(ds->xen, domid)) {
	case XEN_DOMAIN_RUNNING:
	case XEN_DOMAIN_SHUTDOWN:
		return domain_alloc(ds, domid);
	default:
		return NULL;
	}
}

int set_port(struct domain *d, int port)
{
	struct domains *ds = d->ds;

	if (d->port > 0) {
		HASH_DELETE(hh_port, ds->by_port, d);
		xen_evtchn_unbind(ds->xen, d->port);
	}
	d->port = port > 0 ? port : 0;
	if (d->port) {
		HASH_ADD(hh_port, ds->by_port, port, sizeof(d->port), d);
		if (!ds->by_port) {
			/* No table for the first port (HASH_NONFATAL_OOM). */
			xen_evtchn_unbind(ds->xen, d->port);
			d->port = 0;
			return -ENOMEM;
		}
	}
	return 0;
}

void signal_guest(struct domain *d)
{
	xen_evtchn_notify(d->ds->xen, d->port);
}

/* Tell the guest why its ring is no longer served, if it reads that. */
void set_error(struct domain *d, uint32_t error)
{
	if (d->features & DOMAIN_FEATURE_ERROR)
		intf_of(d)->error = error;
	signal_guest(d);
}

bool domain_privileged(const struct domains *ds, unsigned int domid)
{
	return ds->up->privileged(ds->up->owner, domid);
}

/* ---- lifecycle ---- */

/*
 * Forget a domain: its connection, channel and mapping; with gone, also
 * what the tree says about it, and tell @releaseDomain watchers.
 */
void domain_destroy(struct domain *d, bool gone)
{
	struct domains *ds = d->ds;
	struct domain *o, *tmp;
	unsigned int domid = d->domid;
	bool introduced = d->introduced;

	if (d->in_io) {
		/* One of its own requests released it: finish after the pass. */
		d->doomed = true;
		domain_disconnect(d, "domain released");
		return;
	}
	domain_disconnect(d, gone ? "domain gone" : "shutting down");
	if (gone)
		forget_record(ds, domid);
	set_port(d, 0);
	if (d->ring.page)
		xen_unmap_ring(ds->xen, &d->ring);
	domain_discard(d);
	if (!gone)
		return;
	/* A stubdom acting for this domain now acts for nobody. */
	HASH_ITER(hh, ds->by_id, o, tmp) {
		if (o->target != domid)
			continue;
		o->target = DOMID_NONE;
		if (o->conn)
			o->conn->who.target = DOMID_NONE;
		save_domain(o);
	}
	ds->up->forget(ds->up->owner, domid);
	if (introduced)
		ds->up->special(ds->up->owner, "@releaseDomain", domid);
}

/*
 * Domids the tree names that this table does not know (never introduced):
 * when such a domain is dying or gone, nothing of it may pass to the next
 * domain given its id (XSA-322).  A scan of the store's per-domid counts,
 * cheap next to the hypercall each candidate costs.
 */
static void forget_unknown_dead(struct domains *ds)
{
	for (unsigned int domid = 1; domid < DOMAIN_ID_LIMIT; domid++) {
		if (!ds->up->referenced(ds->up->owner, domid) ||
		    find_domain(ds, domid) || domain_privileged(ds, domid))
			continue;
		switch (xen_domain_state(ds->xen, domid)) {
		case XEN_DOMAIN_DYING:
		case XEN_DOMAIN_GONE:
			log_info("domain %u, never introduced, is gone", domid);
			ds->up->forget(ds->up->owner, domid);
			break;
		default:
			break;
		}
	}
}

void domains_check(struct domains *ds)
{
	struct domain *d, *tmp;

	if (!ds->xen)
		return;
	HASH_ITER(hh, ds->by_id, d, tmp) {
		if (d->domid == ds->master_domid)
			continue;
		switch (xen_domain_state(ds->xen, d->domid)) {
		case XEN_DOMAIN_UNKNOWN:
		case XEN_DOMAIN_RUNNING:
			break;
		case XEN_DOMAIN_SHUTDOWN:
			if (d->introduced && !d->shutdown_seen) {
				d->shutdown_seen = true;
				save_domain(d);
				log_info("domain %u shut down", d->domid);
				ds->up->special(ds->up->owner,
						"@releaseDomain", d->domid);
			}
			break;
		case XEN_DOMAIN_DYING:
		case XEN_DOMAIN_GONE:
			log_info("domain %u is gone", d->domid);
			domain_destroy(d, true);
			break;
		}
	}
	forget_unknown_dead(ds);
}

static void check_cb(evutil_socket_t fd, short what, void *arg)
{
	struct domains *ds = arg;

	(void)fd;
	(void)what;
	/* The @releaseDomain events queued here leave after the turn's
	 * commit, with the clean-up they tell of. */
	domains_check(ds);
}

static void evtchn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct domains *ds = arg;
	int port;

	(void)fd;
	(void)what;
	for (unsigned int i = 0; i < EVTCHN_BATCH; i++) {
		struct domain *d;

		port = xen_evtchn_pending(ds->xen);
		if (port < 0)
			return;
		if (port == ds->virq_port) {
			evtimer_add(ds->check_ev, &zero_tv);
			continue;
		}
		HASH_FIND(hh_port, ds->by_port, &port, sizeof(port), d);
		if (d)
			schedule_io(d);
	}
}

/* Serve dom0's kernel over the ring it offers in xsd_kva, if any. */
static void dom0_ring_init(struct domains *ds)
{
	unsigned int domid = ds->master_domid, port;
	struct domain *d;
	int err, p;

	d = domain_alloc(ds, domid);
	if (!d)
		goto nomem;
	err = xen_map_dom0_ring(&d->ring, &port);
	if (err) {
		if (err != -ENOENT)
			log_warn("cannot map dom0's ring: %s", strerror(-err));
		domain_discard(d);
		return;
	}
	p = xen_evtchn_bind(ds->xen, domid, port);
	if (p < 0) {
		log_warn("cannot bind dom0's ring channel %u: %s", port,
			 strerror(-p));
		domain_destroy(d, false);
		return;
	}
	if (set_port(d, p) != 0) {
		domain_destroy(d, false);
		goto nomem;
	}
	intf_of(d)->server_features = d->features;
	if (domain_connect(d) != 0) {
		domain_destroy(d, false);
		goto nomem;
	}
	d->introduced = true;
	/* dom0 may have queued requests already: no reset, just look. */
	signal_guest(d);
	schedule_io(d);
	log_info("serving dom0's ring (port %u)", port);
	return;

nomem:
	log_error("cannot serve dom0's ring: out of memory");
}

struct domains *domains_new(struct event_base *base, struct db *db,
			    unsigned int master_domid,
			    const struct domain_hooks *hooks)
{
	struct domains *ds = calloc(1, sizeof(*ds));
	int port;

	if (!ds)
		return NULL;
	ds->base = base;
	ds->db = db;
	ds->master_domid = master_domid;
	ds->up = hooks;
	ds->check_ev = evtimer_new(base, check_cb, ds);
	if (!ds->check_ev) {
		free(ds);
		return NULL;
	}
	ds->xen = xen_open();
	if (!ds->xen) {
		log_warn("guest rings are unavailable (no Xen: %s); "
			 "serving the socket only", strerror(errno));
		return ds;
	}
	port = xen_evtchn_bind_dom_exc(ds->xen);
	if (port < 0)
		log_warn("cannot bind VIRQ_DOM_EXC (%s): dead domains are "
			 "noticed only when released", strerror(-port));
	ds->virq_port = port;
	ds->evtchn_ev = event_new(base, xen_evtchn_fd(ds->xen),
				  EV_READ | EV_PERSIST, evtchn_cb, ds);
	if (!ds->evtchn_ev || event_add(ds->evtchn_ev, NULL) != 0) {
		log_error("cannot watch the event channel device");
		domains_free(ds);
		return NULL;
	}
	dom0_ring_init(ds);
	return ds;
}

int domains_event_fd(const struct domains *ds)
{
	return ds->xen ? xen_evtchn_fd(ds->xen) : -1;
}

void domains_free(struct domains *ds)
{
	struct domain *d, *tmp;

	if (!ds)
		return;
	HASH_ITER(hh, ds->by_id, d, tmp)
		domain_destroy(d, false);
	if (ds->evtchn_ev)
		event_free(ds->evtchn_ev);
	event_free(ds->check_ev);
	if (ds->xen) {
		if (ds->virq_port > 0)
			xen_evtchn_unbind(ds->xen, ds->virq_port);
		xen_close(ds->xen);
	}
	free(ds);
}

/* ---- the management operations ---- */

/*
 * INTRODUCE of a domain already served: new channel, fresh connection.
 * The channel is the one INTRODUCE names, never the page's evtchn_port:
 * that field counts at the first introduction only (as upstream), when
 * Xen has just written it; by now the guest has had the page to itself.
 */
static int reintroduce(struct domain *d, unsigned int port)
{
	int p;

	/* A remote port is bound once: release ours before binding again. */
	set_port(d, 0);
	p = xen_evtchn_bind(d->ds->xen, d->domid, port);
	if (p < 0)
		log_warn("cannot bind the channel of domain %u again: %s",
			 d->domid, strerror(-p));
	if (p >= 0 && set_port(d, p) != 0)
		p = -ENOMEM;
	d->remote_port = port;
	save_domain(d);
	domain_disconnect(d, "domain introduced again");
	if (start_ring(d) != 0)
		return ENOMEM;
	return p < 0 ? -p : 0;
}

int domains_introduce(struct domains *ds, unsigned int domid, uint64_t gfn,
		      unsigned int port)
{
	struct xenstore_domain_interface *intf;
	struct domain *d;
	bool fresh;
	int err, p;

	if (!ds || !ds->xen) {
		log_warn("cannot introduce domain %u: no Xen here", domid);
		return EIO;
	}
	d = find_domain(ds, domid);
	if (d && d->introduced)
		return reintroduce(d, port);
	fresh = !d;
	if (fresh && !(d = domain_alloc(ds, domid)))
		return ENOMEM;
	err = xen_map_ring(ds->xen, domid, gfn, &d->ring);
	if (err) {
		log_warn("cannot map the ring of domain %u: %s", domid,
			 strerror(-err));
		goto fail;
	}
	intf = intf_of(d);
	/* dom0less: Xen wrote the channel into the page. */
	if (ring_evtchn_port(intf))
		port = ring_evtchn_port(intf);
	p = xen_evtchn_bind(ds->xen, domid, port);
	if (p < 0) {
		err = p;
		log_warn("cannot bind the channel of domain %u: %s", domid,
			 strerror(-err));
		xen_unmap_ring(ds->xen, &d->ring);
		goto fail;
	}
	if (set_port(d, p) != 0 || start_ring(d) != 0) {
		set_port(d, 0);
		xen_unmap_ring(ds->xen, &d->ring);
		err = -ENOMEM;
		goto fail;
	}
	d->introduced = true;
	d->shutdown_seen = false;
	d->gfn = gfn;
	d->remote_port = port;
	save_domain(d);
	log_info("domain %u introduced (port %u)", domid, port);
	if (!domain_privileged(ds, domid))
		ds->up->special(ds->up->owner, "@introduceDomain", domid);
	return 0;

fail:
	if (fresh)
		domain_discard(d);
	return -err;
}

static int introduced_domain(struct domains *ds, unsigned int domid,
			     struct domain **out)
{
	struct domain *d = find_domain(ds, domid);

	if (!d || !d->introduced)
		return ENOENT;
	*out = d;
	return 0;
}

int domains_release(struct domains *ds, unsigned int domid)
{
	struct domain *d;
	int err = introduced_domain(ds, domid, &d);

	if (err)
		return err;
	log_info("domain %u released", domid);
	domain_destroy(d, true);
	return 0;
}

int domains_resume(struct domains *ds, unsigned int domid)
{
	struct domain *d;
	int err = introduced_domain(ds, domid, &d);

	if (err)
		return err;
	d->shutdown_seen = false;
	save_domain(d);
	return 0;
}

int domains_set_target(struct domains *ds, unsigned int domid,
		       unsigned int target)
{
	struct domain *d = find_domain(ds, domid);
	struct domain *t = find_domain(ds, target);

	if (!d || !d->introduced || !t || !t->introduced)
		return ENOENT;
	d->target = target;
	if (d->conn)
		d->conn->who.target = target;
	save_domain(d);
	return 0;
}

bool domains_is_introduced(struct domains *ds, unsigned int domid)
{
	struct domain *d = find_domain(ds, domid);

	return d && d->introduced;
}

bool domains_domid_exists(struct domains *ds, unsigned int domid)
{
	if (!ds || !ds->xen || domains_is_introduced(ds, domid))
		return true;
	return xen_domain_state(ds->xen, domid) != XEN_DOMAIN_GONE;
}

unsigned int domains_count(struct domains *ds)
{
	struct domain *d, *tmp;
	unsigned int n = 0;

	if (!ds)
		return 0;
	HASH_ITER(hh, ds->by_id, d, tmp)
		n += d->introduced;
	return n;
}

int domains_get_features(struct domains *ds, unsigned int domid,
			 unsigned int *features)
{
	struct domain *d = find_or_alloc_existing(ds, domid);

	if (!d)
		return ENOENT;
	*features = d->features;
	return 0;
}

int domains_set_features(struct domains *ds, unsigned int domid,
			 unsigned int features)
{
	struct domain *d = find_or_alloc_existing(ds, domid);

	if (!d)
		return ENOENT;
	if (d->introduced)
		return EBUSY;
	if (features & ~DOMAIN_FEATURES_ALL)
		return EINVAL;
	d->features = features;
	save_domain(d);
	return 0;
}

unsigned int domains_conn_features(struct domains *ds, const struct conn *c)
{
	struct domain *d = c->tp == &ring_transport ? c->tp_data : NULL;

	(void)ds;	/* the connection knows its domain */
	return d ? d->features : DOMAIN_FEATURES_ALL;
}
