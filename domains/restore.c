/*
 * What a restart or a live update needs of the domain table: each domain's
 * record in the database, the start of a request that left its ring
 * (written by ring_conn.c), serving the saved domains again, and the
 * bytes a live update carries over (schema/schema.h has every record).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "domains/domain_impl.h"
#include "log/log.h"
#include "persist/db.h"
#include "schema/schema.h"

static void encode_domain(const void *obj, struct writer *w)
{
	const struct domain *d = obj;
	struct schema_domain rec = {
		.domid = d->domid, .gfn = d->gfn, .port = d->remote_port,
		.features = d->features, .target = d->target,
		.introduced = d->introduced, .shutdown_seen = d->shutdown_seen,
	};

	schema_write_domain(w, &rec);
}

/* Save what a restart needs to serve d again. */
void save_domain(struct domain *d)
{
	char key[SCHEMA_KEY_MAX];

	if (d->domid == d->ds->master_domid)
		return;		/* dom0's own ring is found again at start */
	schema_key_domain(key, d->domid);
	db_put_encoded(d->ds->db, key, encode_domain, d);
}

struct held_input {
	uint32_t end;
	struct evbuffer *bytes;
};

static void encode_input(const void *obj, struct writer *w)
{
	const struct held_input *h = obj;

	schema_write_input(w, h->end, h->bytes);
}

/* The "#input" record kept, put. */
static void put_input(struct domain *d)
{
	char key[SCHEMA_KEY_MAX];

	schema_key_input(key, d->domid);
	db_put(d->ds->db, key, d->input_rec);
}

void save_input(struct domain *d, uint32_t end, struct evbuffer *bytes,
		bool put)
{
	struct held_input h = { end, bytes };
	struct evbuffer *rec = evbuffer_new();
	char key[SCHEMA_KEY_MAX];
	struct writer w;

	if (rec) {
		wr_init(&w, rec);
		encode_input(&h, &w);
		if (!wr_ok(&w)) {
			evbuffer_free(rec);
			rec = NULL;
		}
	}
	if (d->input_rec)
		evbuffer_free(d->input_rec);
	d->input_rec = rec;
	d->input_saved = true;
	if (!put)
		return;
	if (rec) {
		put_input(d);
		return;
	}
	/* No memory: the database learns that it lost a change. */
	schema_key_input(key, d->domid);
	db_put_encoded(d->ds->db, key, encode_input, &h);
}

void forget_input(struct domain *d)
{
	char key[SCHEMA_KEY_MAX];

	if (d->input_rec)
		evbuffer_free(d->input_rec);
	d->input_rec = NULL;
	if (!d->input_saved)
		return;
	schema_key_input(key, d->domid);
	db_delete(d->ds->db, key);
	d->input_saved = false;
}

void domains_save_records(void *arg)
{
	struct domains *ds = arg;
	struct domain *d, *tmp;

	HASH_ITER(hh, ds->by_id, d, tmp) {
		/* One only looked at for its features has no record, and
		 * needs none. */
		if (d->introduced || d->features != DOMAIN_FEATURES_ALL ||
		    d->target != DOMID_NONE)
			save_domain(d);
		if (d->input_saved && d->input_rec)
			put_input(d);
	}
}

void forget_record(struct domains *ds, unsigned int domid)
{
	char key[SCHEMA_KEY_MAX];

	schema_key_domain(key, domid);
	db_delete(ds->db, key);
	schema_key_input(key, domid);
	db_delete(ds->db, key);
}

/* Serve a saved, live domain again: its ring as the guest left it. */
static void resume_domain(struct domain *d, bool fire)
{
	struct domains *ds = d->ds;
	struct xenstore_domain_interface *intf;
	unsigned int port = d->remote_port;
	int err, p;

	err = xen_map_ring(ds->xen, d->domid, d->gfn, &d->ring);
	if (err) {
		log_error("domain %u: cannot map its ring again: %s; it stays "
			  "unserved", d->domid, strerror(-err));
		return;
	}
	intf = intf_of(d);
	if (ring_evtchn_port(intf))
		port = ring_evtchn_port(intf);
	p = xen_evtchn_bind(ds->xen, d->domid, port);
	if (p < 0) {
		log_error("domain %u: cannot bind its channel again: %s; it "
			  "stays unserved", d->domid, strerror(-p));
		xen_unmap_ring(ds->xen, &d->ring);
		return;
	}
	if (set_port(d, p) != 0 || domain_connect(d) != 0) {
		log_error("domain %u: out of memory to serve it again",
			  d->domid);
		return;
	}
	restore_input(d);
	ds->up->restored(ds->up->owner, d->conn, fire);
	/* Whatever it wrote while we were away, and a signal we missed. */
	signal_guest(d);
	schedule_io(d);
	log_info("domain %u served again (port %u)", d->domid, port);
}

struct restore {
	struct domains *ds;
	bool fire;
	/* Saved domains that died meanwhile: released after the database
	 * traversal, which must not write. */
	struct { unsigned int domid; bool introduced; } *dead;
	unsigned int ndead;
};

static int restore_one(const char *name, const void *data, size_t len,
		       void *arg)
{
	struct domains *ds = ((struct restore *)arg)->ds;
	struct schema_domain rec;
	struct domain *d;

	/* The schema checks the layout; the ids and features are ours. */
	if (!schema_decode_domain(data, len, &rec) ||
	    rec.domid >= DOMAIN_ID_LIMIT ||
	    rec.features & ~DOMAIN_FEATURES_ALL) {
		log_error("database: a malformed domain record (%s): ignored",
			  name);
		return 0;
	}
	if (find_domain(ds, rec.domid))
		return 0;
	switch (xen_domain_state(ds->xen, rec.domid)) {
	case XEN_DOMAIN_DYING:
	case XEN_DOMAIN_GONE: {
		struct restore *how = arg;
		void *dead = realloc(how->dead, (how->ndead + 1) *
				     sizeof(*how->dead));

		if (!dead) {
			log_error("domain %u: out of memory to release it",
				  rec.domid);
			return 0;
		}
		how->dead = dead;
		how->dead[how->ndead].domid = rec.domid;
		how->dead[how->ndead++].introduced = rec.introduced;
		return 0;
	}
	default:
		break;
	}
	d = domain_alloc(ds, rec.domid);
	if (!d) {
		log_error("domain %u: out of memory to restore it", rec.domid);
		return 0;
	}
	d->gfn = rec.gfn;
	d->remote_port = rec.port;
	d->features = rec.features;
	d->target = rec.target;
	d->introduced = rec.introduced;
	d->shutdown_seen = rec.shutdown_seen;
	if (rec.introduced)
		resume_domain(d, ((struct restore *)arg)->fire);
	return 0;
}

static int count_one(const char *name, const void *data, size_t len,
		     void *arg)
{
	(void)name;
	(void)data;
	(void)len;
	++*(unsigned int *)arg;
	return 0;
}

void domains_restore(struct domains *ds, bool fire)
{
	struct restore how = { ds, fire };
	struct domain *d, *tmp;
	unsigned int saved = 0;

	if (!ds->db)
		return;
	if (!ds->xen) {
		db_each(ds->db, SCHEMA_PREFIX_DOMAIN, count_one, &saved);
		if (saved)
			log_warn("the database names %u domains, but there is "
				 "no Xen here: they are not served", saved);
		return;
	}
	db_each(ds->db, SCHEMA_PREFIX_DOMAIN, restore_one, &how);
	/* dom0's own ring came up before its watches were known. */
	d = find_domain(ds, ds->master_domid);
	if (d && d->conn)
		ds->up->restored(ds->up->owner, d->conn, fire);
	for (unsigned int i = 0; i < how.ndead; i++) {
		unsigned int domid = how.dead[i].domid;

		log_info("domain %u died while the daemon was down", domid);
		forget_record(ds, domid);
		HASH_ITER(hh, ds->by_id, d, tmp) {
			if (d->target == domid) {
				d->target = DOMID_NONE;
				save_domain(d);
			}
		}
		ds->up->forget(ds->up->owner, domid);
		if (how.dead[i].introduced)
			ds->up->special(ds->up->owner, "@releaseDomain", domid);
	}
	free(how.dead);
	/* Targets name domains restored only now. */
	HASH_ITER(hh, ds->by_id, d, tmp)
		if (d->conn)
			d->conn->who.target = d->target;
	domains_check(ds);
	ds->up->commit(ds->up->owner);
}

void domains_save_conns(struct domains *ds, struct writer *w,
			const struct conn *extra_for, const void *extra,
			size_t extra_len)
{
	struct domain *d, *tmp;
	unsigned int n = 0;

	/* What the turn's end would send: the live update committed it, and
	 * the requests it answers must leave the ring, or the new program
	 * would take them again. */
	HASH_ITER(hh, ds->by_id, d, tmp)
		ring_release(d, false);
	HASH_ITER(hh, ds->by_id, d, tmp)
		n += d->conn != NULL;
	schema_write_queues_count(w, n);
	HASH_ITER(hh, ds->by_id, d, tmp) {
		struct conn *c = d->conn;

		if (!c)
			continue;
		/* Only the requests already gone from the ring: the new
		 * program peeks the others again. */
		schema_write_queues(w, d->domid, c->in, d->in_consumed, c->out,
				    c == extra_for ? extra : NULL,
				    c == extra_for ? extra_len : 0);
	}
}

int domains_load_conns(struct domains *ds, struct reader *r)
{
	struct schema_queues q;
	uint32_t n;

	if (!schema_read_queues_count(r, &n))
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		struct domain *d;

		if (!schema_read_queues(r, &q))
			return -1;
		d = find_domain(ds, q.id);
		if (!d || !d->conn) {
			log_warn("live update: domain %u is not served any more; "
				 "its queued bytes are dropped", q.id);
			continue;
		}
		/* The image, not the database, has what left the ring. */
		evbuffer_drain(d->conn->in, evbuffer_get_length(d->conn->in));
		if (evbuffer_add(d->conn->in, q.in, q.in_len) != 0 ||
		    evbuffer_add(d->conn->out, q.out, q.out_len) != 0)
			return -1;
		d->conn->out_total += q.out_len;
		d->in_consumed = q.in_len;
		/* The program before committed it: it goes at the first
		 * turn's end. */
		conn_hold(d->conn);
		schedule_io(d);
	}
	return 0;
}
