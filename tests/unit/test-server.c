/*
 * server: the owner of connections and state, without the handlers where it
 * can be (its hooks, forgetting a domain, firing watches, the turn's commit
 * and release).  The CONTROL commands have test-control.c; the domain
 * table driving these hooks, test-domain.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/unit/server_rig.h"

#include "persist/db.h"


/* A dispatcher that only counts: the server must hand it every request. */
static unsigned int dispatched;

static void count_dispatch(struct conn *c, const struct request *req)
{
	dispatched++;
	conn_send(c, req->hdr.type, req->hdr.req_id, req->hdr.tx_id, "OK", 3);
}

static void setup(void)
{
	rig_setup();
}

static void setup_counting(void)
{
	dispatched = 0;
	rig_setup_with(count_dispatch);
}

static void teardown(void)
{
	rig_teardown();
}

/* A database at path in dir, both made at first use (path empty). */
static struct db *scratch_db(char *dir, char *path, size_t len,
			     bool want_restorable)
{
	bool restorable;
	struct db *db;

	if (!path[0]) {
		ck_assert_ptr_nonnull(mkdtemp(dir));
		snprintf(path, len, "%s/db.tdb", dir);
	}
	db = db_open(path, &restorable);
	ck_assert_ptr_nonnull(db);
	ck_assert_int_eq(restorable, want_restorable);
	return db;
}

/* For the turn's tests: the server with a database, so a turn has
 * something to commit and its output waits for the turn's end. */
static char turn_dir[] = "/tmp/xs-unit-server-XXXXXX", turn_path[64];
static char turn_journal[80];	/* where a commit goes (persist/db.h) */

static void setup_db(void)
{
	setup();
	strcpy(turn_dir, "/tmp/xs-unit-server-XXXXXX");
	turn_path[0] = '\0';
	srv.db = scratch_db(turn_dir, turn_path, sizeof(turn_path), false);
	db_follow(srv.db, &srv.store, true);
	snprintf(turn_journal, sizeof(turn_journal), "%s.journal", turn_path);
}

static void teardown_db(void)
{
	srv.store.observer = NULL;
	db_close(srv.db);
	srv.db = NULL;
	unit_remove_dir(turn_dir);
	teardown();
}

#define OK(c, type, lit) \
	ck_assert_msg(rig_xs((c), (type), UNIT_BYTES(lit)) == (uint32_t)(type), \
		      "%s: %s", #lit, rbuf)

/* ---- the server itself ---- */

START_TEST(connections_hand_requests_to_the_given_dispatcher)
{
	unit_add_packet(c5->in, XS_READ, 7, 0, "/x", 3);
	unit_add_packet(c5->in, XS_READ, 8, 0, "/y", 3);
	conn_handle_input(c5);
	ck_assert_uint_eq(dispatched, 2);
	unit_take_packet(c5->out, &rhdr, rbuf);
	ck_assert_uint_eq(rhdr.req_id, 7);
	ck_assert_uint_eq(srv.nconns, 2);
}
END_TEST

/*
 * server/waiting.c: asked by a busy connection, the server serves now the
 * other connections whose descriptor is ready (read_now), not the asker,
 * not one taken out of the set; a ready descriptor of no connection (the
 * event channel: some guest) makes the asker yield.  One level only: a
 * connection served there does not serve others.
 */
static bool nested_answer;
static unsigned int nested_asks;

static void ask_while_served(struct conn *c, const struct request *req)
{
	(void)req;
	nested_asks++;
	nested_answer = server_serve_waiting(c);
}

START_TEST(waiting_neighbours_are_served_and_a_waiting_guest_yields)
{
	int a[2], b[2], g[2];

	ck_assert_int_ge(srv.waiting_fd, 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, g), 0);
	server_waiting_set(&srv, a[0], c0, true);
	server_waiting_set(&srv, b[0], c5, true);
	ck_assert(!server_serve_waiting(c0));
	ck_assert_uint_eq(tp0.read_nows + tp5.read_nows, 0);

	/* Both ready: only the other one is served. */
	ck_assert_int_eq(write(a[1], "x", 1), 1);
	ck_assert_int_eq(write(b[1], "x", 1), 1);
	ck_assert(!server_serve_waiting(c0));
	ck_assert_uint_eq(tp0.read_nows, 0);
	ck_assert_uint_eq(tp5.read_nows, 1);
	ck_assert(!server_serve_waiting(c5));
	ck_assert_uint_eq(tp0.read_nows, 1);

	/* Out of the set (not being read): not served. */
	server_waiting_set(&srv, b[0], c5, false);
	ck_assert(!server_serve_waiting(c0));
	ck_assert_uint_eq(tp5.read_nows, 1);

	/* A guest's notification: the asker yields. */
	server_waiting_set(&srv, g[0], NULL, true);
	ck_assert(!server_serve_waiting(c0));
	ck_assert_int_eq(write(g[1], "x", 1), 1);
	ck_assert(server_serve_waiting(c0));

	/* c5 served from c0's ask asks in turn: nothing is served again. */
	server_waiting_set(&srv, g[0], NULL, false);
	server_waiting_set(&srv, b[0], c5, true);
	srv.hooks.dispatch = ask_while_served;
	unit_add_packet(c5->in, XS_READ, 1, 0, "/", 2);
	ck_assert(!server_serve_waiting(c0));
	ck_assert_uint_eq(tp5.read_nows, 2);
	ck_assert_uint_eq(nested_asks, 1);
	ck_assert(!nested_answer);
	ck_assert_uint_eq(tp0.read_nows, 1);
	for (int i = 0; i < 2; i++) {
		close(a[i]);
		close(b[i]);
		close(g[i]);
	}
}
END_TEST

/*
 * With no descriptor in the set but the asker's own, nobody can be
 * waiting, and the ask makes no system call: seen through a stand-in set
 * that would report a guest to any epoll_wait.
 */
START_TEST(a_lone_connection_does_not_ask)
{
	int a[2], b[2], g[2], real = srv.waiting_fd;
	int fake = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

	ck_assert_int_ge(fake, 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, g), 0);
	ck_assert_int_eq(write(g[1], "x", 1), 1);
	ck_assert_int_eq(epoll_ctl(fake, EPOLL_CTL_ADD, g[0], &ev), 0);

	/* Only c0's own descriptor, put in twice: no ask. */
	server_waiting_set(&srv, a[0], c0, true);
	server_waiting_set(&srv, a[0], c0, true);
	srv.waiting_fd = fake;
	ck_assert(!server_serve_waiting(c0));
	/* Another's: c0 asks (and the stand-in says a guest waits). */
	srv.waiting_fd = real;
	server_waiting_set(&srv, b[0], c5, true);
	srv.waiting_fd = fake;
	ck_assert(server_serve_waiting(c0));
	/* c0 out, the other in: c0 asks; the other, alone, does not. */
	srv.waiting_fd = real;
	server_waiting_set(&srv, a[0], c0, false);
	server_waiting_set(&srv, a[0], c0, false);
	srv.waiting_fd = fake;
	ck_assert(server_serve_waiting(c0));
	ck_assert(!server_serve_waiting(c5));
	/* The other out too: the set is empty, nobody asks. */
	srv.waiting_fd = real;
	server_waiting_set(&srv, b[0], c5, false);
	srv.waiting_fd = fake;
	ck_assert(!server_serve_waiting(c0));
	ck_assert(!server_serve_waiting(c5));

	srv.waiting_fd = real;
	close(fake);
	for (int i = 0; i < 2; i++) {
		close(a[i]);
		close(b[i]);
		close(g[i]);
	}
}
END_TEST

START_TEST(privileged_domains_are_master_priv_and_zero)
{
	srv.master_domid = 3;
	srv.priv_domid = 9;
	ck_assert(server_domid_privileged(&srv, 0));
	ck_assert(server_domid_privileged(&srv, 3));
	ck_assert(server_domid_privileged(&srv, 9));
	ck_assert(!server_domid_privileged(&srv, 5));
	/* The domain table asks the same through its hooks. */
	ck_assert(srv.domain_hooks.privileged(srv.domain_hooks.owner, 9));
	ck_assert(!srv.domain_hooks.privileged(srv.domain_hooks.owner, 5));
}
END_TEST

START_TEST(a_closed_connection_loses_its_watches_and_transactions)
{
	struct client *cl = c5->owner_data;

	OK(c5, XS_WATCH, "/local/domain/5/w\0tok\0");
	evbuffer_drain(c5->out, evbuffer_get_length(c5->out));	/* event */
	OK(c5, XS_TRANSACTION_START, "\0");
	ck_assert_uint_eq(srv.watches.count, 1);
	ck_assert_uint_eq(cl->txns.count, 1);
	ck_assert_uint_eq(srv.open_txns, 1);
	conn_close(c5, "test");
	ck_assert_uint_eq(srv.watches.count, 0);
	ck_assert_uint_eq(srv.open_txns, 0);
	unit_loop_once(base);
	ck_assert_uint_eq(tp5.frees, 1);
	ck_assert_uint_eq(srv.nconns, 1);
}
END_TEST

START_TEST(forgetting_a_domain_removes_its_nodes_and_permissions)
{
	OK(c0, XS_WRITE, "/local/domain/5/mine\0v");
	OK(c0, XS_SET_PERMS, "/local/domain/5\0n5\0");
	OK(c0, XS_SET_PERMS, "/local/domain/5/mine\0n5\0");
	OK(c0, XS_WRITE, "/shared\0s");
	OK(c0, XS_SET_PERMS, "/shared\0n0\0r5\0b7\0");
	OK(c0, XS_WATCH, "/local/domain/5/mine\0gone\0");
	evbuffer_drain(c0->out, evbuffer_get_length(c0->out));
	ck_assert(srv.domain_hooks.referenced(srv.domain_hooks.owner, 5));

	srv.domain_hooks.forget(srv.domain_hooks.owner, 5);

	ck_assert_ptr_null(store_lookup(&srv.store, "/local/domain/5"));
	ck_assert_ptr_null(store_lookup(&srv.store, "/local/domain/5/mine"));
	ck_assert(!srv.domain_hooks.referenced(srv.domain_hooks.owner, 5));
	/* The watch of the removed node fired. */
	unit_take_packet(c0->out, &rhdr, rbuf);
	ck_assert_uint_eq(rhdr.type, XS_WATCH_EVENT);
	ck_assert_str_eq(rbuf, "/local/domain/5/mine");
	/* /shared keeps its owner and dom7, not dom5. */
	ck_assert_uint_eq(rig_xs(c0, XS_GET_PERMS, UNIT_BYTES("/shared\0")),
			  XS_GET_PERMS);
	ck_assert_mem_eq(rbuf, "n0\0b7\0", 6);
	ck_assert_uint_eq(rhdr.len, 6);
	OK(c0, XS_CONTROL, "check\0");
}
END_TEST

START_TEST(special_events_go_to_the_watchers_the_node_allows)
{
	OK(c0, XS_WATCH, "@releaseDomain\0r0\0");
	OK(c5, XS_WATCH, "@releaseDomain\0r5\0");
	evbuffer_drain(c0->out, evbuffer_get_length(c0->out));
	evbuffer_drain(c5->out, evbuffer_get_length(c5->out));
	srv.domain_hooks.special(srv.domain_hooks.owner, "@releaseDomain", 6);
	unit_take_packet(c0->out, &rhdr, rbuf);
	ck_assert_uint_eq(rhdr.type, XS_WATCH_EVENT);
	ck_assert_str_eq(rbuf, "@releaseDomain");
	/* @releaseDomain is dom0's (n0): the guest hears nothing. */
	ck_assert_uint_eq(evbuffer_get_length(c5->out), 0);
}
END_TEST

/* Does the file at path contain the bytes of s? */
static bool file_has(const char *path, const char *s)
{
	static char buf[1 << 20];
	FILE *f = fopen(path, "rb");
	size_t n;

	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	return memmem(buf, n, s, strlen(s)) != NULL;
}

/* A transport whose kick looks at the database file and may queue more,
 * as a socket's write does when the drained client gets coalesced events. */
static const char *kick_file;		/* each kick looks (NULL: not) */
static bool durable_at_kick;		/* it held "/durable" then */
static unsigned int more_at_kick;	/* packets each kick queues */
static struct conn_transport looking_tp;

static void looking_kick(struct conn *c)
{
	unit_tp_kick(c);
	if (kick_file)
		durable_at_kick = file_has(kick_file, "/durable");
	if (more_at_kick) {
		more_at_kick--;
		conn_send(c, XS_WATCH_EVENT, 0, 0, "/x\0t", 5);
	}
}

static void look_at_kicks(struct conn *c)
{
	looking_tp = *unit_transport();
	looking_tp.kick = looking_kick;
	c->tp = &looking_tp;
}

START_TEST(a_turn_is_durable_before_its_replies_are_released)
{
	look_at_kicks(c0);
	kick_file = turn_journal;
	unit_add_packet(c0->in, XS_WRITE, 9, 0, "/durable\0yes", 12);
	conn_handle_input(c0);
	/* Queued, held: not to be sent, the transport not told. */
	ck_assert_uint_gt(evbuffer_get_length(c0->out), 0);
	ck_assert_uint_eq(conn_out_ready(c0), 0);
	ck_assert_uint_eq(tp0.kicks, 0);
	server_turn_end(&srv);
	ck_assert_uint_eq(tp0.kicks, 1);
	/* Without closing, as a crash right now would leave it: the file
	 * itself held the record when the transport was told to send. */
	ck_assert_msg(durable_at_kick, "the reply was released before the "
		      "change was in the file");
	ck_assert_uint_eq(conn_out_ready(c0), evbuffer_get_length(c0->out));
	unit_take_packet(c0->out, &rhdr, rbuf);
	ck_assert_uint_eq(rhdr.type, XS_WRITE);
	kick_file = NULL;
}
END_TEST

/* Without a database nothing is to be made durable: a batch's output and
 * what it fired on others are sent at its end, not the turn's. */
START_TEST(without_a_database_a_batch_is_sent_at_its_end)
{
	OK(c0, XS_MKDIR, "/p\0");
	OK(c0, XS_SET_PERMS, "/p\0n5\0");
	OK(c5, XS_WATCH, "/p\0tok\0");
	evbuffer_drain(c5->out, evbuffer_get_length(c5->out));
	server_turn_end(&srv);
	tp0.kicks = tp5.kicks = 0;
	unit_add_packet(c0->in, XS_WRITE, 1, 0, "/p/x\0v", 7);
	conn_handle_input(c0);
	ck_assert(!c0->held && !c5->held);
	ck_assert_uint_eq(tp0.kicks, 1);
	ck_assert_uint_eq(tp5.kicks, 1);
	ck_assert_uint_eq(conn_out_ready(c0), evbuffer_get_length(c0->out));
	ck_assert_uint_eq(conn_out_ready(c5), evbuffer_get_length(c5->out));
	ck_assert_uint_gt(evbuffer_get_length(c5->out), 0);	/* the event */
}
END_TEST

/* Every connection with output in the turn is released and kicked once at
 * its end; one without is not touched. */
START_TEST(the_turn_end_sends_every_held_connection_once)
{
	unit_add_packet(c0->in, XS_WRITE, 1, 0, "/x\0v", 4);
	unit_add_packet(c0->in, XS_READ, 2, 0, "/x", 3);
	/* c5 reads after c0's change, before it is committed: held too. */
	unit_add_packet(c5->in, XS_READ, 3, 0, "/x", 3);
	conn_handle_input(c0);
	conn_handle_input(c5);
	ck_assert(c0->held && c5->held);
	ck_assert_uint_eq(conn_out_ready(c5), 0);
	server_turn_end(&srv);
	ck_assert(!c0->held && !c5->held);
	ck_assert(LIST_EMPTY(&srv.held));
	ck_assert_uint_eq(tp0.kicks, 1);
	ck_assert_uint_eq(tp5.kicks, 1);
	ck_assert_uint_eq(conn_out_ready(c0), evbuffer_get_length(c0->out));
	ck_assert_uint_eq(conn_out_ready(c5), evbuffer_get_length(c5->out));
	ck_assert_uint_eq(c0->in_released, c0->in_handled);
	/* A turn with nothing queued kicks nobody. */
	server_turn_end(&srv);
	ck_assert_uint_eq(tp0.kicks, 1);
	ck_assert_uint_eq(tp5.kicks, 1);
}
END_TEST

/* A commit in the middle of a turn (a ring's partial request) releases
 * what was held; it is sent at the turn's end, with what came after. */
START_TEST(a_commit_mid_turn_releases_and_the_turn_end_sends)
{
	size_t first;

	unit_add_packet(c0->in, XS_WRITE, 1, 0, "/a\0v", 4);
	conn_handle_input(c0);
	first = evbuffer_get_length(c0->out);
	server_commit(&srv);
	ck_assert_uint_eq(conn_out_ready(c0), first);
	ck_assert_uint_eq(c0->in_released, c0->in_handled);
	ck_assert(c0->held);
	ck_assert_uint_eq(tp0.kicks, 0);
	unit_add_packet(c0->in, XS_WRITE, 2, 0, "/b\0v", 4);
	conn_handle_input(c0);
	ck_assert_uint_eq(conn_out_ready(c0), first);
	ck_assert_uint_lt(c0->in_released, c0->in_handled);
	server_turn_end(&srv);
	ck_assert_uint_eq(tp0.kicks, 1);
	ck_assert_uint_eq(conn_out_ready(c0), evbuffer_get_length(c0->out));
}
END_TEST

/* Output queued while the turn's output is sent (events a client gets
 * once it reads again) goes in the same turn end, not a turn later. */
START_TEST(output_queued_while_sending_goes_in_the_same_turn)
{
	look_at_kicks(c0);
	more_at_kick = 2;
	unit_add_packet(c0->in, XS_READ, 1, 0, "/x", 3);
	conn_handle_input(c0);
	server_turn_end(&srv);
	ck_assert_uint_eq(more_at_kick, 0);
	ck_assert_uint_eq(tp0.kicks, 3);
	ck_assert(!c0->held);
	ck_assert_uint_eq(conn_out_ready(c0), evbuffer_get_length(c0->out));
}
END_TEST

/* A batch that leaves no change waiting for a commit (reads) is sent at
 * its end, without a commit; one after a change waits for it. */
START_TEST(a_batch_with_nothing_to_commit_is_sent_at_its_end)
{
	unit_add_packet(c0->in, XS_READ, 1, 0, "/tool", 6);
	conn_handle_input(c0);
	ck_assert(!c0->held);
	ck_assert_uint_eq(tp0.kicks, 1);
	ck_assert_uint_gt(conn_out_ready(c0), 0);
	ck_assert(!db_pending(srv.db));
	unit_add_packet(c0->in, XS_WRITE, 2, 0, "/y\0v", 4);
	conn_handle_input(c0);
	ck_assert(db_pending(srv.db));
	ck_assert(c0->held);
	ck_assert_uint_eq(tp0.kicks, 1);
	server_turn_end(&srv);
	ck_assert(!db_pending(srv.db));
	ck_assert_uint_eq(tp0.kicks, 2);
}
END_TEST

/* A connection closed and freed while held leaves the server's list. */
START_TEST(a_connection_freed_while_held_is_not_sent)
{
	unit_add_packet(c0->in, XS_WRITE, 1, 0, "/x\0v", 4);
	unit_add_packet(c5->in, XS_READ, 2, 0, "/x", 3);
	conn_handle_input(c0);
	conn_handle_input(c5);
	ck_assert(c5->held);
	conn_close(c5, "test");
	unit_loop_once(base);
	ck_assert_uint_eq(tp5.frees, 1);
	server_turn_end(&srv);	/* the sanitizer build sees a use */
	ck_assert_uint_eq(tp5.kicks, 0);
	ck_assert(LIST_EMPTY(&srv.held));
	c5 = unit_server_conn(&srv, &tp5, 5, false);	/* the teardown's */
	ck_assert_ptr_nonnull(c5);
}
END_TEST

START_TEST(a_guest_stops_being_read_at_its_outstanding_quota)
{
	srv.quotas.hard[QUOTA_OUTSTANDING] = 2;
	for (uint32_t id = 1; id <= 3; id++)
		unit_add_packet(c5->in, XS_READ, id, 0, "/x", 3);
	conn_handle_input(c5);
	/* Two replies unread: the third request waits, reading is off. */
	unit_take_packet(c5->out, &rhdr, rbuf);
	unit_take_packet(c5->out, &rhdr, rbuf);
	ck_assert_uint_eq(rhdr.req_id, 2);
	ck_assert_uint_eq(evbuffer_get_length(c5->out), 0);
	ck_assert(!tp5.reading);
	/* Read, they make room: the transport says so, the third goes. */
	conn_output_drained(c5);
	unit_loop_once(base);
	unit_take_packet(c5->out, &rhdr, rbuf);
	ck_assert_uint_eq(rhdr.req_id, 3);
	/* The privileged are not limited. */
	for (uint32_t id = 1; id <= 3; id++)
		unit_add_packet(c0->in, XS_READ, id, 0, "/x", 3);
	conn_handle_input(c0);
	for (int i = 0; i < 3; i++)
		unit_take_packet(c0->out, &rhdr, rbuf);
}
END_TEST

START_TEST(the_tree_and_quotas_come_back_from_the_database)
{
	char dir[] = "/tmp/xs-unit-server-XXXXXX", path[64] = "";
	struct db *db = scratch_db(dir, path, sizeof(path), false);

	srv.db = db;
	db_follow(db, &srv.store, true);
	OK(c0, XS_WRITE, "/kept\0value");
	OK(c0, XS_CONTROL, "quota\0set\0nodes\0" "77\0");
	server_commit(&srv);
	srv.store.observer = NULL;
	db_close(db);
	srv.db = NULL;
	teardown();

	setup();
	srv.db = scratch_db(dir, path, sizeof(path), true);
	ck_assert_int_eq(server_load(&srv), 0);
	OK(c0, XS_READ, "/kept\0");
	ck_assert_str_eq(rbuf, "value");
	ck_assert_uint_eq(srv.quotas.hard[QUOTA_NODES], 77);
	OK(c0, XS_CONTROL, "check\0");
	db_close(srv.db);
	srv.db = NULL;
	unit_remove_dir(dir);
}
END_TEST

START_TEST(a_database_without_the_special_nodes_is_not_loaded)
{
	char dir[] = "/tmp/xs-unit-server-XXXXXX", path[64] = "";
	struct db *db = scratch_db(dir, path, sizeof(path), false);

	srv.db = db;
	db_follow(db, &srv.store, true);
	OK(c0, XS_WRITE, "/kept\0value");
	ck_assert_int_eq(store_remove(&srv.store,
				      store_lookup(&srv.store, "@releaseDomain"),
				      NULL, NULL), 0);
	server_commit(&srv);
	srv.store.observer = NULL;
	db_close(db);
	srv.db = NULL;
	teardown();

	setup();
	srv.db = scratch_db(dir, path, sizeof(path), true);
	ck_assert_int_eq(server_load(&srv), -1);
	/* The initial tree stays. */
	ck_assert_ptr_nonnull(store_lookup(&srv.store, "@releaseDomain"));
	ck_assert_ptr_null(store_lookup(&srv.store, "/kept"));
	db_close(srv.db);
	srv.db = NULL;
	unit_remove_dir(dir);
}
END_TEST

static Suite *server_suite(void)
{
	Suite *s = suite_create("server");
	TCase *t = tcase_create("server");
	TCase *d = tcase_create("dispatcher");

	tcase_add_checked_fixture(d, setup_counting, teardown);
	tcase_add_test(d, connections_hand_requests_to_the_given_dispatcher);
	suite_add_tcase(s, d);

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, without_a_database_a_batch_is_sent_at_its_end);
	tcase_add_test(t, privileged_domains_are_master_priv_and_zero);
	tcase_add_test(t, waiting_neighbours_are_served_and_a_waiting_guest_yields);
	tcase_add_test(t, a_lone_connection_does_not_ask);
	tcase_add_test(t, a_closed_connection_loses_its_watches_and_transactions);
	tcase_add_test(t, forgetting_a_domain_removes_its_nodes_and_permissions);
	tcase_add_test(t, special_events_go_to_the_watchers_the_node_allows);
	tcase_add_test(t, a_guest_stops_being_read_at_its_outstanding_quota);
	tcase_add_test(t, the_tree_and_quotas_come_back_from_the_database);
	tcase_add_test(t, a_database_without_the_special_nodes_is_not_loaded);
	suite_add_tcase(s, t);

	t = tcase_create("turn");
	tcase_add_checked_fixture(t, setup_db, teardown_db);
	tcase_add_test(t, a_turn_is_durable_before_its_replies_are_released);
	tcase_add_test(t, the_turn_end_sends_every_held_connection_once);
	tcase_add_test(t, a_commit_mid_turn_releases_and_the_turn_end_sends);
	tcase_add_test(t, output_queued_while_sending_goes_in_the_same_turn);
	tcase_add_test(t, a_connection_freed_while_held_is_not_sent);
	tcase_add_test(t, a_batch_with_nothing_to_commit_is_sent_at_its_end);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return unit_main(server_suite());
}
