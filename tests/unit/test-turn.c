/*
 * The loop turn (server/turn.c): one commit for everything a turn changed,
 * and no reply or watch event leaves, by socket or by ring, before it.
 *
 * The daemon's pieces run as main() has them (domain_rig.h): the server,
 * real socket clients (socketpairs served by daemon/socket.c), guests over
 * the hypervisor double, and a real database.  Its own end-of-turn event
 * lives on a base nobody runs, so every commit here is the server's.  The
 * suite is linked with db_commit, db_put_encoded and db_delete wrapped
 * (the Makefile's --wrap): each commit is recorded with whether a change
 * was pending and with what the clients could see at that moment.
 */
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "tests/unit/domain_rig.h"

#include "daemon/socket.h"

#define NSOCK 8
#define MAX_COMMITS 64
#define GUEST 3
#define GUEST_PORT 33

/* ---- the database, observed ---- */

int __real_db_commit(struct db *db);
int __real_db_put_encoded(struct db *db, const char *key,
			  void (*encode)(const void *obj, struct writer *w),
			  const void *obj);
void __real_db_delete(struct db *db, const char *key);
int __wrap_db_commit(struct db *db);
int __wrap_db_put_encoded(struct db *db, const char *key,
			  void (*encode)(const void *obj, struct writer *w),
			  const void *obj);
void __wrap_db_delete(struct db *db, const char *key);

static int peer[NSOCK];			/* the clients' ends, or -1 */
static struct conn *sconn[NSOCK];	/* the daemon's connections */

/* What one commit saw. */
struct seen {
	bool changes;			/* something was pending */
	int visible[NSOCK];		/* bytes each client could read */
	uint32_t req_cons, rsp_prod;	/* the guest's ring, if any */
};
static struct seen seen[MAX_COMMITS];
static unsigned int ncommits;
static bool pending;

static const struct store_observer *db_observer;

static void spy_changed(const struct node *n, const char *path,
			size_t path_len, uint64_t born, void *arg)
{
	(void)arg;
	pending = true;
	db_observer->changed(n, path, path_len, born, db_observer->arg);
}

static void spy_removed(const struct node *n, const char *path, void *arg)
{
	(void)arg;
	pending = true;
	db_observer->removed(n, path, db_observer->arg);
}

static const struct store_observer spy = { spy_changed, spy_removed, NULL };

static int visible(int i)
{
	int n = 0;

	ck_assert_int_eq(ioctl(peer[i], FIONREAD, &n), 0);
	return n;
}

int __wrap_db_commit(struct db *db)
{
	struct seen *s = &seen[ncommits];

	ck_assert_uint_lt(ncommits, MAX_COMMITS);
	s->changes = pending;
	for (int i = 0; i < NSOCK; i++)
		s->visible[i] = peer[i] >= 0 ? visible(i) : 0;
	if (xd.page[GUEST]) {
		s->req_cons = xd.page[GUEST]->req_cons;
		s->rsp_prod = xd.page[GUEST]->rsp_prod;
	}
	ncommits++;
	pending = false;
	return __real_db_commit(db);
}

int __wrap_db_put_encoded(struct db *db, const char *key,
			  void (*encode)(const void *obj, struct writer *w),
			  const void *obj)
{
	pending |= db != NULL;
	return __real_db_put_encoded(db, key, encode, obj);
}

void __wrap_db_delete(struct db *db, const char *key)
{
	pending |= db != NULL;
	__real_db_delete(db, key);
}

/* ---- socket clients ---- */

static void setup(void)
{
	xd_reset();
	start(true, false);
	db_observer = srv.store.observer;
	srv.store.observer = &spy;
	for (int i = 0; i < NSOCK; i++) {
		int sv[2];

		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
					    0, sv), 0);
		sconn[i] = socket_conn_resume(&srv, sv[0]);
		ck_assert_ptr_nonnull(sconn[i]);
		peer[i] = sv[1];
	}
	settle();
	ncommits = 0;
	pending = false;
}

static void teardown(void)
{
	for (int i = 0; i < NSOCK; i++) {
		close(peer[i]);
		peer[i] = -1;
	}
	srv.store.observer = db_observer;
	stop();
	unit_remove_dir(dbdir);
	dbpath[0] = '\0';
}

/* Client i sends one request (req_id id). */
static void csend(int i, uint32_t type, uint32_t id, const void *p,
		  size_t len)
{
	struct xsd_sockmsg hdr = { .type = type, .req_id = id,
				   .len = (uint32_t)len };

	ck_assert_int_eq(write(peer[i], &hdr, sizeof(hdr)),
			 (ssize_t)sizeof(hdr));
	ck_assert_int_eq(write(peer[i], p, len), (ssize_t)len);
}

/* Client i takes one whole message; false if none has come. */
static bool crecv(int i, struct xsd_sockmsg *hdr, char *buf)
{
	if (visible(i) < (int)sizeof(*hdr))
		return false;
	ck_assert_int_eq(recv(peer[i], hdr, sizeof(*hdr), MSG_PEEK),
			 (ssize_t)sizeof(*hdr));
	if (visible(i) < (int)(sizeof(*hdr) + hdr->len))
		return false;
	ck_assert_int_eq(read(peer[i], hdr, sizeof(*hdr)),
			 (ssize_t)sizeof(*hdr));
	ck_assert_int_eq(read(peer[i], buf, hdr->len), (ssize_t)hdr->len);
	buf[hdr->len] = '\0';
	return true;
}

/* Client i's next message is the reply of type to id. */
static void creply(int i, uint32_t type, uint32_t id)
{
	ck_assert_msg(crecv(i, &rhdr, rbuf), "client %d: no reply", i);
	ck_assert_uint_eq(rhdr.req_id, id);
	ck_assert_msg(rhdr.type == type, "client %d: %u: %s", i,
		      (unsigned int)rhdr.type, rbuf);
}

/* ---- sockets ---- */

/* Eight clients' writes handled in one pass of the loop: nothing leaves
 * before the turn's end, which commits them all at once, then sends. */
START_TEST(every_socket_s_replies_wait_for_one_commit_per_turn)
{
	for (int i = 0; i < NSOCK; i++) {
		char buf[32], path[16];

		snprintf(path, sizeof(path), "/s%d", i);
		csend(i, XS_WRITE, 100 + i, buf, join(buf, path, "v", NULL));
	}
	unit_loop_once(base);
	for (int i = 0; i < NSOCK; i++) {
		char path[16];

		snprintf(path, sizeof(path), "/s%d", i);
		ck_assert_ptr_nonnull(store_lookup(&srv.store, path));
		ck_assert_int_eq(visible(i), 0);
	}
	ck_assert_uint_eq(ncommits, 0);
	server_turn_end(&srv);
	ck_assert_uint_eq(ncommits, 1);
	ck_assert(seen[0].changes);
	for (int i = 0; i < NSOCK; i++) {
		ck_assert_int_eq(seen[0].visible[i], 0);
		creply(i, XS_WRITE, 100 + i);
	}
}
END_TEST

/* Reads only: the turn asks the database once, with nothing to commit. */
START_TEST(a_turn_that_changes_nothing_commits_nothing)
{
	for (int i = 0; i < NSOCK; i++)
		csend(i, XS_READ, 10 + i, "/tool/xenstored", 16);
	turn();
	ck_assert_uint_eq(ncommits, 1);
	ck_assert(!seen[0].changes);
	for (int i = 0; i < NSOCK; i++)
		creply(i, XS_READ, 10 + i);
}
END_TEST

/* A watcher hears of another client's write only after the commit. */
START_TEST(a_watch_event_waits_for_the_commit_of_its_change)
{
	csend(0, XS_WATCH, 1, "/w\0tok", 7);
	settle();
	creply(0, XS_WATCH, 1);
	ck_assert(crecv(0, &rhdr, rbuf));	/* the watch's first event */
	ck_assert_uint_eq(rhdr.type, XS_WATCH_EVENT);
	ncommits = 0;
	csend(1, XS_WRITE, 2, "/w/x\0v", 6);
	unit_loop_once(base);
	ck_assert_int_eq(visible(0), 0);
	server_turn_end(&srv);
	ck_assert_uint_eq(ncommits, 1);
	ck_assert(seen[0].changes);
	ck_assert_int_eq(seen[0].visible[0], 0);
	ck_assert_int_eq(seen[0].visible[1], 0);
	ck_assert(crecv(0, &rhdr, rbuf));
	ck_assert_uint_eq(rhdr.type, XS_WATCH_EVENT);
	ck_assert_str_eq(rbuf, "/w/x");
	creply(1, XS_WRITE, 2);
}
END_TEST

#define BIG 4000		/* a value whose READs fill a socket fast */

/* Client i writes BIG bytes at /big, then asks for them n times in one
 * write (each small write costs the socket far more room).  What the
 * connection had handled before the READs. */
static uint64_t read_big_n_times(int i, uint32_t n)
{
	static char buf[64 + BIG];
	struct evbuffer *reqs = evbuffer_new();
	size_t len = join(buf, "/big", NULL);
	uint64_t before;

	memset(buf + len, 'v', BIG);
	csend(i, XS_WRITE, 1, buf, len + BIG);
	settle();
	creply(i, XS_WRITE, 1);
	before = sconn[i]->in_handled;
	for (uint32_t id = 1; id <= n; id++)
		unit_add_packet(reqs, XS_READ, id, 0, "/big", 5);
	ck_assert_int_eq(evbuffer_write(reqs, peer[i]),
			 (int)(n * (WIRE_HDR_LEN + 5)));
	evbuffer_free(reqs);
	return before;
}

/* A client that stops reading stops being read once CONN_OUT_HIGH bytes
 * wait for it, and is read again once it drains them. */
START_TEST(a_socket_that_does_not_read_is_paused_and_resumed)
{
	const uint32_t total = 300;
	uint64_t before = read_big_n_times(0, total);
	uint32_t got = 0;

	settle();
	settle();
	ck_assert(sconn[0]->output_full);
	ck_assert_uint_lt(sconn[0]->in_handled - before,
			  total * (WIRE_HDR_LEN + 5));
	for (int rounds = 0; got < total; rounds++) {
		ck_assert_msg(rounds < 2000, "%u replies of %u", got, total);
		while (crecv(0, &rhdr, rbuf)) {
			ck_assert_uint_eq(rhdr.type, XS_READ);
			ck_assert_uint_eq(rhdr.req_id, ++got);
			ck_assert_uint_eq(rhdr.len, BIG);
		}
		turn();
	}
	ck_assert(!sconn[0]->output_full);
}
END_TEST

/* A socket the kernel stopped taking bytes from is written again when
 * it has room, from the loop: only what was released goes then. */
START_TEST(a_blocked_socket_writes_only_what_was_released)
{
	struct evbuffer *got = evbuffer_new();
	int sv[2], sz = 4096;
	unsigned int replies = 0;

	/* Client 0 again, over a socket that takes little at a time. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    sv), 0);
	ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz,
				    sizeof(sz)), 0);
	close(peer[0]);
	peer[0] = sv[1];
	sconn[0] = socket_conn_resume(&srv, sv[0]);
	ck_assert_ptr_nonnull(sconn[0]);
	read_big_n_times(0, 4);
	settle();
	ck_assert_uint_gt(conn_out_ready(sconn[0]), 0);	/* blocked */
	/* Something held, as a watch firing mid-turn would queue. */
	conn_send(sconn[0], XS_WATCH_EVENT, 0, 0, "/held\0t", 8);
	/* The client reads all it can (the kernel frees room only for
	 * whole writes taken), the loop runs, but no turn ends. */
	for (int rounds = 0; evbuffer_get_length(got) < 4 * (WIRE_HDR_LEN +
							       BIG);
	     rounds++) {
		ck_assert_msg(rounds < 100, "%zu bytes",
			      evbuffer_get_length(got));
		while (visible(0) && evbuffer_read(got, peer[0], -1) > 0)
			;
		unit_loop_once(base);	/* writable again: wr's turn */
	}
	while (replies < 4) {
		unit_take_packet(got, &rhdr, rbuf);
		ck_assert_uint_eq(rhdr.type, XS_READ);
		ck_assert_uint_eq(rhdr.req_id, ++replies);
	}
	ck_assert_uint_eq(evbuffer_get_length(got), 0);
	ck_assert_int_eq(visible(0), 0);
	server_turn_end(&srv);
	ck_assert(crecv(0, &rhdr, rbuf));
	ck_assert_uint_eq(rhdr.type, XS_WATCH_EVENT);
	ck_assert_str_eq(rbuf, "/held");
	evbuffer_free(got);
}
END_TEST

/* ---- rings ---- */

static struct xenstore_domain_interface *ring(void)
{
	return xd.page[GUEST];
}

/* The guest takes one whole reply message; false if not all of one is
 * there (the daemon may have written part of one). */
static bool gtake(struct xsd_sockmsg *hdr, char *buf)
{
	struct xenstore_domain_interface *intf = ring();
	unsigned char h[sizeof(*hdr)];

	if (intf->rsp_prod - intf->rsp_cons < sizeof(h))
		return false;
	for (size_t i = 0; i < sizeof(h); i++)
		h[i] = (unsigned char)
		       intf->rsp[MASK_XENSTORE_IDX(intf->rsp_cons + i)];
	memcpy(hdr, h, sizeof(h));
	if (intf->rsp_prod - intf->rsp_cons < sizeof(h) + hdr->len)
		return false;
	return xd_guest_recv(GUEST, hdr, buf);
}

/* The guest signalled: a turn for its channel (ncommits forgets it), then
 * the pass of its ring, whose turn has not ended. */
static void channel_pass(void)
{
	turn();
	ncommits = 0;
	unit_loop_once(base);
}

/* One commit, with a change, saw the guest's ring at cons and prod: no
 * request taken off it, no reply put in. */
static void one_commit_saw_the_ring_at(uint32_t cons, uint32_t prod)
{
	ck_assert_uint_eq(ncommits, 1);
	ck_assert(seen[0].changes);
	ck_assert_uint_eq(seen[0].req_cons, cons);
	ck_assert_uint_eq(seen[0].rsp_prod, prod);
}

/* Every request left the ring; the next reply answers id. */
static void ring_answered(uint32_t id)
{
	ck_assert_uint_eq(ring()->req_cons, ring()->req_prod);
	ck_assert(xd_guest_recv(GUEST, &rhdr, rbuf));
	ck_assert_uint_eq(rhdr.req_id, id);
}

/* A guest's request leaves its ring, and its reply enters it, only after
 * the commit; the guest is signalled once for both. */
START_TEST(a_ring_request_leaves_the_ring_after_the_commit)
{
	uint32_t cons, prod;
	unsigned int signals;

	guest_up(GUEST, GUEST_PORT);
	settle();
	ncommits = 0;
	cons = ring()->req_cons;
	prod = ring()->rsp_prod;
	signals = xd.notified[GUEST];
	xd_guest_send(GUEST, GUEST_PORT, XS_WRITE, 7, 0, "a\0b", 3);
	channel_pass();
	ck_assert_ptr_nonnull(store_lookup(&srv.store, "/local/domain/3/a"));
	ck_assert_uint_eq(ring()->req_cons, cons);
	ck_assert_uint_eq(ring()->rsp_prod, prod);
	server_turn_end(&srv);
	one_commit_saw_the_ring_at(cons, prod);
	ring_answered(7);
	ck_assert_uint_eq(rhdr.type, XS_WRITE);
	ck_assert_uint_eq(xd.notified[GUEST], signals + 1);
}
END_TEST

/* Socket clients and a guest busy in the same turn share its commit. */
START_TEST(sockets_and_a_ring_share_the_turn_s_commit)
{
	uint32_t prod;

	guest_up(GUEST, GUEST_PORT);
	settle();
	ncommits = 0;
	prod = ring()->rsp_prod;
	xd_guest_send(GUEST, GUEST_PORT, XS_WRITE, 7, 0, "g\0v", 3);
	turn();			/* the channel: the ring's pass is due */
	ncommits = 0;
	csend(0, XS_WRITE, 8, "/s0\0v", 5);
	csend(1, XS_WRITE, 9, "/s1\0v", 5);
	turn();
	ck_assert_uint_eq(ncommits, 1);
	ck_assert(seen[0].changes);
	ck_assert_int_eq(seen[0].visible[0], 0);
	ck_assert_int_eq(seen[0].visible[1], 0);
	ck_assert_uint_eq(seen[0].rsp_prod, prod);
	creply(0, XS_WRITE, 8);
	creply(1, XS_WRITE, 9);
	ck_assert(xd_guest_recv(GUEST, &rhdr, rbuf));
	ck_assert_uint_eq(rhdr.req_id, 7);
}
END_TEST

/*
 * A request whose end the guest has not written: its start leaves the
 * ring at once, committed first (ring_conn.c's release_partial), in the
 * middle of the turn.  The whole request before it is durable by then,
 * so it leaves too and its reply may go; nothing went before the commit.
 */
START_TEST(a_partial_request_commits_mid_turn_before_it_leaves)
{
	struct xsd_sockmsg hdr = { .type = XS_WRITE, .req_id = 9, .len = 3 };
	uint32_t cons, prod;

	guest_up(GUEST, GUEST_PORT);
	settle();
	ncommits = 0;
	cons = ring()->req_cons;
	prod = ring()->rsp_prod;
	xd_guest_send(GUEST, GUEST_PORT, XS_WRITE, 8, 0, "a\0b", 3);
	xd_guest_write(GUEST, &hdr, sizeof(hdr));
	channel_pass();
	/* The commit mid-turn saw the ring untouched; after it both
	 * requests' bytes left, the reply came. */
	one_commit_saw_the_ring_at(cons, prod);
	ring_answered(8);
	server_turn_end(&srv);
	/* The rest of the second: answered after its own commit. */
	cons = ring()->req_cons;
	prod = ring()->rsp_prod;
	xd_guest_write(GUEST, "c\0d", 3);
	xd_signal(xd_local_port(GUEST, GUEST_PORT));
	channel_pass();
	ck_assert_uint_eq(ring()->req_cons, cons);
	ck_assert_uint_eq(ring()->rsp_prod, prod);
	server_turn_end(&srv);
	one_commit_saw_the_ring_at(cons, prod);
	ring_answered(9);
	ck_assert_uint_eq(rhdr.type, XS_WRITE);
	ck_assert_ptr_nonnull(store_lookup(&srv.store, "/local/domain/3/c"));
}
END_TEST

/*
 * The start of a request behind requests handled later, by the
 * connection's own resume rather than a pass of the ring (here: once the
 * unread-replies quota let it go on): it too must leave the ring without
 * another signal, which the guest does not send while its earlier bytes
 * are still there.  (With the resume before the ring's pass in a turn,
 * the turn's release once left it there: the guest then waited.)
 */
START_TEST(a_partial_request_left_behind_a_pause_still_leaves_the_ring)
{
	struct xsd_sockmsg hdr = { .type = XS_WRITE, .req_id = 9, .len = 3 };

	guest_up(GUEST, GUEST_PORT);
	srv.quotas.hard[QUOTA_OUTSTANDING] = 2;
	settle();
	for (uint32_t id = 1; id <= 3; id++) {
		struct xsd_sockmsg whole = { .type = XS_WRITE, .req_id = id,
					     .len = 3 };

		xd_guest_write(GUEST, &whole, sizeof(whole));
		xd_guest_write(GUEST, "a\0b", 3);
	}
	xd_guest_write(GUEST, &hdr, sizeof(hdr));
	xd_signal(xd_local_port(GUEST, GUEST_PORT));
	settle();
	ck_assert_uint_eq(ring()->req_cons, ring()->req_prod);
	for (uint32_t id = 1; id <= 3; id++) {
		ck_assert(xd_guest_recv(GUEST, &rhdr, rbuf));
		ck_assert_uint_eq(rhdr.req_id, id);
	}
	/* The rest: signalled, as Linux's xenbus does only when all it
	 * wrote before had left the ring (checked above). */
	xd_guest_write(GUEST, "c\0d", 3);
	xd_signal(xd_local_port(GUEST, GUEST_PORT));
	settle();
	ck_assert(xd_guest_recv(GUEST, &rhdr, rbuf));
	ck_assert_uint_eq(rhdr.req_id, 9);
}
END_TEST

/* A guest that does not read its replies reaches its unread-replies quota
 * and is not read; once it reads, every request is answered in order. */
START_TEST(a_guest_that_does_not_read_is_paused_and_resumed)
{
	static char value[900];
	char buf[64 + sizeof(value)];
	const uint32_t total = 6;
	uint32_t got = 0;
	size_t len;

	memset(value, 'v', sizeof(value));
	len = join(buf, "/local/domain/3/big", NULL);
	memcpy(buf + len, value, sizeof(value));
	guest_up(GUEST, GUEST_PORT);
	ck_assert_uint_eq(xs(XS_WRITE, buf, len + sizeof(value)), XS_WRITE);
	srv.quotas.hard[QUOTA_OUTSTANDING] = 2;
	settle();
	for (uint32_t id = 1; id <= total; id++)
		xd_guest_send(GUEST, GUEST_PORT, XS_READ, id, 0, "big", 4);
	settle();
	/* One reply fits the ring, two more wait: it is not read. */
	ck_assert(conn_of(GUEST)->outstanding_full);
	ck_assert_uint_lt(conn_of(GUEST)->in_handled,
			  total * (WIRE_HDR_LEN + 4));
	for (int rounds = 0; got < total; rounds++) {
		ck_assert_msg(rounds < 100, "%u replies of %u", got, total);
		while (gtake(&rhdr, rbuf)) {
			ck_assert_uint_eq(rhdr.type, XS_READ);
			ck_assert_uint_eq(rhdr.req_id, ++got);
			ck_assert_uint_eq(rhdr.len, sizeof(value));
		}
		xd_signal(xd_local_port(GUEST, GUEST_PORT));
		settle();
	}
	ck_assert(!conn_of(GUEST)->outstanding_full);
	ck_assert_uint_eq(ring()->req_cons, ring()->req_prod);
}
END_TEST

/* A live update commits mid-turn and saves what the connections hold: a
 * guest's request handled in that turn leaves its ring first, or the new
 * program would take it again and answer it twice. */
START_TEST(a_live_update_takes_handled_requests_off_the_ring)
{
	struct evbuffer *image = evbuffer_new();
	struct writer w;
	uint32_t cons;

	guest_up(GUEST, GUEST_PORT);
	settle();
	cons = ring()->req_cons;
	xd_guest_send(GUEST, GUEST_PORT, XS_WRITE, 5, 0, "lu\0v", 4);
	channel_pass();
	ck_assert_uint_eq(ring()->req_cons, cons);
	server_commit(&srv);
	wr_init(&w, image);
	domains_save_conns(srv.domains, &w, NULL, NULL, 0);
	ck_assert(wr_ok(&w));
	ck_assert_uint_eq(ring()->req_cons, ring()->req_prod);
	ck_assert(gtake(&rhdr, rbuf));
	ck_assert_uint_eq(rhdr.req_id, 5);
	evbuffer_free(image);
}
END_TEST

/* ---- output made outside requests ---- */

/* A dying domain's clean-up and @releaseDomain come from a timer, not a
 * request: the event waits for the commit of the clean-up all the same. */
START_TEST(a_release_event_waits_for_the_commit_of_the_clean_up)
{
	guest_up(GUEST, GUEST_PORT);
	csend(0, XS_WATCH, 1, "@releaseDomain\0r", 17);
	settle();
	creply(0, XS_WATCH, 1);
	ck_assert(crecv(0, &rhdr, rbuf));	/* the watch's first event */
	xd.state[GUEST] = XEN_DOMAIN_DYING;
	xd_signal(xd_virq_port());
	turn();			/* the channel: the check is due */
	ncommits = 0;
	unit_loop_once(base);		/* the check */
	ck_assert(!domains_is_introduced(srv.domains, GUEST));
	ck_assert_ptr_null(store_lookup(&srv.store, "/local/domain/3"));
	ck_assert_int_eq(visible(0), 0);
	server_turn_end(&srv);
	ck_assert_uint_eq(ncommits, 1);
	ck_assert(seen[0].changes);
	ck_assert_int_eq(seen[0].visible[0], 0);
	ck_assert(crecv(0, &rhdr, rbuf));
	ck_assert_uint_eq(rhdr.type, XS_WATCH_EVENT);
	ck_assert_str_eq(rbuf, "@releaseDomain");
}
END_TEST

static Suite *turn_suite(void)
{
	Suite *s = suite_create("turn");
	TCase *t = tcase_create("sockets");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, every_socket_s_replies_wait_for_one_commit_per_turn);
	tcase_add_test(t, a_turn_that_changes_nothing_commits_nothing);
	tcase_add_test(t, a_watch_event_waits_for_the_commit_of_its_change);
	tcase_add_test(t, a_socket_that_does_not_read_is_paused_and_resumed);
	tcase_add_test(t, a_blocked_socket_writes_only_what_was_released);
	suite_add_tcase(s, t);

	t = tcase_create("rings");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, a_ring_request_leaves_the_ring_after_the_commit);
	tcase_add_test(t, sockets_and_a_ring_share_the_turn_s_commit);
	tcase_add_test(t, a_partial_request_commits_mid_turn_before_it_leaves);
	tcase_add_test(t, a_guest_that_does_not_read_is_paused_and_resumed);
	tcase_add_test(t, a_partial_request_left_behind_a_pause_still_leaves_the_ring);
	tcase_add_test(t, a_live_update_takes_handled_requests_off_the_ring);
	tcase_add_test(t, a_release_event_waits_for_the_commit_of_the_clean_up);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	for (int i = 0; i < NSOCK; i++)
		peer[i] = -1;
	return unit_main(turn_suite());
}
