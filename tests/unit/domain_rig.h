/*
 * tests/unit: a daemon over the hypervisor double, for the domain suites.
 *
 * start() builds what main() builds (a server, optionally its database,
 * the domain table over xen_double.h) plus one privileged client of dom0,
 * c0, on the fake transport.  xs() is c0's request (watch events queued
 * before its reply are kept for events()); gxs() a guest's, through its
 * ring, the loop run until quiet.  Include once per suite (it brings the
 * double, which defines domains/xen.h's functions).
 */
#ifndef XS_TESTS_UNIT_DOMAIN_RIG_H
#define XS_TESTS_UNIT_DOMAIN_RIG_H

#include <stdarg.h>
#include <stdio.h>

#include "tests/unit/xen_double.h"

#include "ops/ops.h"
#include "persist/db.h"
#include "server/server.h"

static struct event_base *base;
static struct server srv;
static struct unit_tp tp0;
static struct conn *c0;
static struct xsd_sockmsg rhdr;
static char rbuf[XENSTORE_PAYLOAD_MAX + 1];
static uint32_t next_req_id = 1;
static struct evbuffer *evq;	/* watch events c0 received, in order */
static char dbdir[64], dbpath[96];

/* The test's database file (made at first use); restorable as asked. */
static inline struct db *open_db(bool want_restorable)
{
	bool restorable;
	struct db *db;

	if (!dbpath[0]) {
		snprintf(dbdir, sizeof(dbdir), "/tmp/xs-unit-domain-XXXXXX");
		ck_assert_ptr_nonnull(mkdtemp(dbdir));
		snprintf(dbpath, sizeof(dbpath), "%s/db.tdb", dbdir);
	}
	db = db_open(dbpath, &restorable);
	ck_assert_ptr_nonnull(db);
	ck_assert_int_eq(restorable, want_restorable);
	return db;
}

/*
 * The daemon's start as main() has it: a server, its database (with_db:
 * new, or restorable: one a daemon left), then the domain table over both.
 */
static inline void start(bool with_db, bool restorable)
{
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	ck_assert_int_eq(server_init(&srv, base, ops_dispatch), 0);
	evq = evbuffer_new();
	ck_assert_ptr_nonnull(evq);
	if (with_db) {
		srv.db = open_db(restorable);
		if (restorable)
			ck_assert_int_eq(server_load(&srv), 0);
		db_follow(srv.db, &srv.store, !restorable);
	}
	c0 = unit_server_conn(&srv, &tp0, 0, true);
	ck_assert_ptr_nonnull(c0);
	srv.domains = domains_new(base, srv.db, 0, &srv.domain_hooks);
	ck_assert_ptr_nonnull(srv.domains);
}

/* The daemon's exit: what it leaves in the database stays there. */
static inline void stop(void)
{
	srv.store.observer = NULL;
	db_close(srv.db);
	srv.db = NULL;
	domains_free(srv.domains);
	srv.domains = NULL;
	server_destroy(&srv);
	evbuffer_free(evq);
	event_base_free(base);
}

static inline void rig_setup(void)
{
	xd_reset();
	start(false, false);
}

static inline void rig_teardown(void)
{
	stop();
	if (dbpath[0]) {
		unit_remove_dir(dbdir);
		dbpath[0] = '\0';
	}
}

/* One turn as the daemon's loop has it: what is due now, then the turn's
 * commit and the output it released. */
static inline void turn(void)
{
	unit_loop_once(base);
	server_turn_end(&srv);
}

/* Run what is due until the loop is quiet (a pass per turn at most). */
static inline void settle(void)
{
	for (int i = 0; i < 8; i++)
		turn();
}

/* Strings joined with their NULs, as a request payload; returns the length. */
static inline size_t join(char *buf, const char *first, ...)
{
	size_t len = 0;
	va_list ap;

	va_start(ap, first);
	for (const char *s = first; s; s = va_arg(ap, const char *)) {
		strcpy(buf + len, s);
		len += strlen(s) + 1;
	}
	va_end(ap);
	return len;
}

/* dom0's request; its reply in rhdr/rbuf (watch events before it kept). */
static inline uint32_t xs(uint32_t type, const void *p, size_t len)
{
	struct unit_req u;
	uint32_t id = next_req_id++;

	ops_dispatch(c0, unit_request(&u, type, id, 0, p, len));
	for (;;) {
		unit_take_packet(c0->out, &rhdr, rbuf);
		if (rhdr.type != XS_WATCH_EVENT)
			break;
		unit_add_packet(evq, rhdr.type, rhdr.req_id, rhdr.tx_id, rbuf,
				rhdr.len);
	}
	ck_assert_uint_eq(rhdr.req_id, id);
	return rhdr.type;
}

#define OK(type, lit) \
	ck_assert_msg(xs((type), UNIT_BYTES(lit)) == (uint32_t)(type), \
		      "%s: %s", #lit, rbuf)
#define ERR(type, lit, err) do { \
	ck_assert_msg(xs((type), UNIT_BYTES(lit)) == XS_ERROR, "%s: %s", \
		      #lit, rbuf); \
	ck_assert_str_eq(rbuf, (err)); \
} while (0)

/* INTRODUCE domid over remote port; the reply type. */
static inline uint32_t introduce(unsigned int domid, unsigned int port)
{
	char buf[64], d[16], p[16];

	snprintf(d, sizeof(d), "%u", domid);
	snprintf(p, sizeof(p), "%u", port);
	return xs(XS_INTRODUCE, buf, join(buf, d, "1234", p, NULL));
}

/* A guest up and introduced, its home made and given to it. */
static inline void guest_up(unsigned int domid, unsigned int port)
{
	char buf[64], path[32], perm[16];

	xd_guest(domid);
	ck_assert_uint_eq(introduce(domid, port), XS_INTRODUCE);
	snprintf(path, sizeof(path), "/local/domain/%u", domid);
	snprintf(perm, sizeof(perm), "n%u", domid);
	ck_assert_uint_eq(xs(XS_MKDIR, buf, join(buf, path, NULL)), XS_MKDIR);
	ck_assert_uint_eq(xs(XS_SET_PERMS, buf, join(buf, path, perm, NULL)),
			  XS_SET_PERMS);
}

/* A guest's request through its ring; the reply type, into rhdr/rbuf. */
static inline uint32_t gxs(unsigned int domid, unsigned int port,
			   uint32_t type, uint32_t tx_id, const void *p,
			   size_t len)
{
	uint32_t id = next_req_id++;

	xd_guest_send(domid, port, type, id, tx_id, p, len);
	settle();
	do
		ck_assert_msg(xd_guest_recv(domid, &rhdr, rbuf),
			      "domain %u: no reply", domid);
	while (rhdr.type == XS_WATCH_EVENT);
	ck_assert_uint_eq(rhdr.req_id, id);
	return rhdr.type;
}

#define GOK(domid, port, type, lit) \
	ck_assert_msg(gxs((domid), (port), (type), 0, UNIT_BYTES(lit)) == \
		      (uint32_t)(type), "%s: %s", #lit, rbuf)

/* How many events for path c0 has queued (all taken off). */
static inline unsigned int events(const char *path)
{
	unsigned int n = 0;

	ck_assert_int_eq(evbuffer_add_buffer(evq, c0->out), 0);
	while (evbuffer_get_length(evq)) {
		unit_take_packet(evq, &rhdr, rbuf);
		ck_assert_uint_eq(rhdr.type, XS_WATCH_EVENT);
		n += strcmp(rbuf, path) == 0;
	}
	return n;
}

/* c0 watches path; the watch's first event taken. */
static inline void watch(const char *path)
{
	char buf[64];

	ck_assert_uint_eq(xs(XS_WATCH, buf, join(buf, path, "tok", NULL)),
			  XS_WATCH);
	ck_assert_uint_eq(events(path), 1);
}

/* The live connection of domid (its ring's, for a guest), or NULL. */
static inline struct conn *conn_of(unsigned int domid)
{
	struct conn *c;

	LIST_FOREACH(c, &srv.conns, link)
		if (c->who.domid == domid && !c->closing)
			return c;
	return NULL;
}

/* A daemon with a new database; guests introduced by the tests. */
static inline void rig_setup_db(void)
{
	xd_reset();
	start(true, false);
}

/* Stop, and start again from the database (the guests live on). */
static inline void restart(void)
{
	server_commit(&srv);
	stop();
	start(true, true);
}

/* The guest takes every message waiting in its ring. */
static inline void gdrain(unsigned int domid)
{
	while (xd_guest_recv(domid, &rhdr, rbuf))
		;
}

#endif
