/*
 * domains: the lifecycle of a domain (INTRODUCE to RELEASE or death,
 * RESUME, SET_TARGET, features) and what goes with it.  The real domains/
 * and server/ run over a hypervisor the test plays (domain_rig.h);
 * requests come from a dom0 client on the fake transport and from guests
 * through their rings.
 */
#include "tests/unit/domain_rig.h"

/* ---- INTRODUCE ---- */

START_TEST(introduce_serves_the_ring_and_fires_introduce_domain)
{
	struct xenstore_domain_interface *intf;

	watch("@introduceDomain");
	guest_up(5, 77);
	ck_assert_uint_eq(events("@introduceDomain"), 1);
	OK(XS_IS_DOMAIN_INTRODUCED, "5\0");
	ck_assert_str_eq(rbuf, "T");
	intf = xd.page[5];
	ck_assert_uint_eq(intf->server_features, DOMAIN_FEATURES_ALL);
	ck_assert_uint_eq(xd.mapped[5], 1);
	ck_assert_int_gt(xd_local_port(5, 77), 0);
	/* The guest is served, as itself, at home. */
	GOK(5, 77, XS_WRITE, "x\0hello");
	ck_assert_uint_gt(xd.notified[5], 0);
	OK(XS_GET_PERMS, "/local/domain/5/x\0");
	ck_assert_str_eq(rbuf, "n5");
	ck_assert_ptr_nonnull(conn_of(5));
	ck_assert_str_eq(conn_of(5)->tp->kind, "ring");
}
END_TEST

START_TEST(introduce_of_a_privileged_domain_fires_nothing)
{
	srv.priv_domid = 3;
	watch("@introduceDomain");
	xd_guest(3);
	ck_assert_uint_eq(introduce(3, 9), XS_INTRODUCE);
	OK(XS_IS_DOMAIN_INTRODUCED, "3\0");
	ck_assert_str_eq(rbuf, "T");
	ck_assert_uint_eq(events("@introduceDomain"), 0);
	/* Its connection is privileged. */
	ck_assert(conn_of(3)->who.privileged);
}
END_TEST

/* As upstream's C daemon: a second INTRODUCE of a live domain binds the
 * channel again and serves the ring from scratch; it fires nothing. */
START_TEST(introduce_again_rebinds_and_resets_the_connection)
{
	struct xenstore_domain_interface *intf;
	int old_port;

	guest_up(5, 77);
	watch("@introduceDomain");
	GOK(5, 77, XS_WATCH, "w\0gw\0");
	GOK(5, 77, XS_TRANSACTION_START, "\0");
	ck_assert_uint_eq(srv.watches.count, 2);
	ck_assert_uint_eq(srv.open_txns, 1);
	old_port = xd_local_port(5, 77);

	ck_assert_uint_eq(introduce(5, 78), XS_INTRODUCE);

	ck_assert_uint_eq(events("@introduceDomain"), 0);
	ck_assert(!xd.port[old_port].bound);
	ck_assert_int_gt(xd_local_port(5, 78), 0);
	ck_assert_uint_eq(xd.mapped[5], 1);
	intf = xd.page[5];
	ck_assert_uint_eq(intf->req_prod, 0);
	ck_assert_uint_eq(intf->rsp_prod, 0);
	/* The old connection's watch and transaction went with it. */
	ck_assert_uint_eq(srv.watches.count, 1);
	ck_assert_uint_eq(srv.open_txns, 0);
	/* Served on the new channel. */
	GOK(5, 78, XS_WRITE, "y\0again");
	OK(XS_READ, "/local/domain/5/y\0");
	ck_assert_str_eq(rbuf, "again");
	/* The same port again works too: ours is unbound first. */
	ck_assert_uint_eq(introduce(5, 78), XS_INTRODUCE);
	GOK(5, 78, XS_READ, "y\0");
	ck_assert_str_eq(rbuf, "again");
}
END_TEST

/* The page's dom0less channel field counts at the first INTRODUCE
 * only: once the guest runs it may write anything there, so a second
 * INTRODUCE binds the port it names. */
START_TEST(introduce_again_ignores_the_page_channel_field)
{
	uint32_t *field;

	guest_up(5, 77);
	field = (uint32_t *)((char *)xd.page[5] + RING_EVTCHN_PORT_OFFSET);
	*field = 99;		/* the guest's doing */
	ck_assert_uint_eq(introduce(5, 78), XS_INTRODUCE);
	ck_assert_int_gt(xd_local_port(5, 78), 0);
	ck_assert_int_eq(xd_local_port(5, 99), 0);
	GOK(5, 78, XS_WRITE, "y\0on 78");
	OK(XS_READ, "/local/domain/5/y\0");
	ck_assert_str_eq(rbuf, "on 78");
}
END_TEST

START_TEST(introduce_refuses_bad_arguments_and_guests)
{
	struct unit_tp tp7;
	struct conn *c7;
	struct unit_req u;

	xd_guest(5);
	ERR(XS_INTRODUCE, "5\0001234\0", "EINVAL");
	ERR(XS_INTRODUCE, "5\0001234\0000\0", "EINVAL");
	ERR(XS_INTRODUCE, "32752\0001234\0007\0", "EINVAL");	/* 0x7FF0 */
	ERR(XS_INTRODUCE, "x\0001234\0007\0", "EINVAL");
	OK(XS_IS_DOMAIN_INTRODUCED, "5\0");
	ck_assert_str_eq(rbuf, "F");
	/* INTRODUCE is the privileged domains'. */
	c7 = unit_server_conn(&srv, &tp7, 7, false);
	ops_dispatch(c7, unit_request(&u, XS_INTRODUCE, 1, 0,
				      UNIT_BYTES("5\0001234\0007\0")));
	unit_take_packet(c7->out, &rhdr, rbuf);
	ck_assert_uint_eq(rhdr.type, XS_ERROR);
	ck_assert_str_eq(rbuf, "EACCES");
	ck_assert_uint_eq(xd.mapped[5], 0);
}
END_TEST

START_TEST(introduce_that_cannot_bind_leaves_nothing_behind)
{
	watch("@introduceDomain");
	xd_guest(5);
	xd.fail_bind[5] = true;
	ERR(XS_INTRODUCE, "5\0001234\0007\0", "EINVAL");
	ck_assert_uint_eq(xd.mapped[5], 0);
	ck_assert_ptr_null(conn_of(5));
	ck_assert_uint_eq(events("@introduceDomain"), 0);
	OK(XS_IS_DOMAIN_INTRODUCED, "5\0");
	ck_assert_str_eq(rbuf, "F");
	/* A domain Xen does not know cannot be mapped (ESRCH has no name
	 * on the wire). */
	ck_assert_int_eq(domains_introduce(srv.domains, 6, 1234, 7), ESRCH);
	ck_assert_uint_eq(introduce(6, 7), XS_ERROR);
	ck_assert_str_eq(rbuf, "EINVAL");
	/* Once it can, it works. */
	xd.fail_bind[5] = false;
	ck_assert_uint_eq(introduce(5, 7), XS_INTRODUCE);
	ck_assert_uint_eq(events("@introduceDomain"), 1);
}
END_TEST

START_TEST(introduce_without_xen_is_eio)
{
	stop();
	xd_reset();
	xd.no_xen = true;
	start(false, false);
	xd_guest(5);
	ERR(XS_INTRODUCE, "5\0001234\0007\0", "EIO");
	/* The store's own domain is introduced all the same. */
	OK(XS_IS_DOMAIN_INTRODUCED, "0\0");
	ck_assert_str_eq(rbuf, "T");
	OK(XS_IS_DOMAIN_INTRODUCED, "32752\0");	/* DOMID_SELF */
	ck_assert_str_eq(rbuf, "T");
}
END_TEST

/* ---- RELEASE and death ---- */

START_TEST(release_forgets_everything_of_the_domain)
{
	int port;

	guest_up(5, 77);
	watch("@releaseDomain");
	GOK(5, 77, XS_WRITE, "mine\0v");
	GOK(5, 77, XS_WATCH, "mine\0gw\0");
	GOK(5, 77, XS_TRANSACTION_START, "\0");
	OK(XS_TYPE_SET_QUOTA, "5\0nodes\00012\0");
	ck_assert_uint_eq(quota_limit(&srv.quotas, 5, QUOTA_NODES), 12);
	OK(XS_WRITE, "/shared\0s");
	OK(XS_SET_PERMS, "/shared\0n0\0r5\0b7\0");
	OK(XS_WRITE, "/given\0g");
	OK(XS_SET_PERMS, "/given\0n5\0r7\0");
	port = xd_local_port(5, 77);

	OK(XS_RELEASE, "5\0");

	ck_assert_uint_eq(events("@releaseDomain"), 1);
	OK(XS_IS_DOMAIN_INTRODUCED, "5\0");
	ck_assert_str_eq(rbuf, "F");
	/* Its connection, watches and transactions. */
	ck_assert_ptr_null(conn_of(5));
	ck_assert_uint_eq(srv.watches.count, 1);
	ck_assert_uint_eq(srv.open_txns, 0);
	settle();
	ck_assert_uint_eq(srv.nconns, 1);
	/* Its ring and channel. */
	ck_assert_uint_eq(xd.mapped[5], 0);
	ck_assert(!xd.port[port].bound);
	/* Its quota override. */
	ck_assert_uint_eq(quota_limit(&srv.quotas, 5, QUOTA_NODES),
			  srv.quotas.hard[QUOTA_NODES]);
	/* The nodes it owned are deleted, wherever they are; others stop
	 * naming it. */
	ERR(XS_READ, "/local/domain/5/mine\0", "ENOENT");
	ERR(XS_READ, "/given\0", "ENOENT");
	ERR(XS_READ, "/local/domain/5\0", "ENOENT");
	OK(XS_GET_PERMS, "/shared\0");
	ck_assert_mem_eq(rbuf, "n0\0b7\0", 6);
	ck_assert_uint_eq(rhdr.len, 6);
	ck_assert(!store_domid_referenced(&srv.store, 5));
	OK(XS_CONTROL, "check\0");
	/* Once is enough. */
	ERR(XS_RELEASE, "5\0", "ENOENT");
}
END_TEST

START_TEST(release_refuses_the_store_and_unknown_domains)
{
	srv.priv_domid = 3;
	ERR(XS_RELEASE, "0\0", "EINVAL");
	ERR(XS_RELEASE, "3\0", "EINVAL");
	ERR(XS_RELEASE, "x\0", "EINVAL");
	ERR(XS_RELEASE, "9\0", "ENOENT");
	ERR(XS_RESUME, "0\0", "EINVAL");
	ERR(XS_RESUME, "9\0", "ENOENT");
}
END_TEST

START_TEST(a_domain_found_dead_through_virq_dom_exc_is_released)
{
	guest_up(5, 77);
	guest_up(6, 78);
	watch("@releaseDomain");
	GOK(5, 77, XS_WATCH, "w\0gw\0");
	xd.state[5] = XEN_DOMAIN_DYING;
	xd_signal(xd_virq_port());
	settle();
	ck_assert_uint_eq(events("@releaseDomain"), 1);
	ck_assert(!domains_is_introduced(srv.domains, 5));
	ck_assert_uint_eq(xd.mapped[5], 0);
	ck_assert_uint_eq(srv.watches.count, 1);
	ERR(XS_READ, "/local/domain/5\0", "ENOENT");
	/* The other one lives on. */
	ck_assert(domains_is_introduced(srv.domains, 6));
	GOK(6, 78, XS_WRITE, "still\0here");
	/* Gone entirely is the same. */
	xd.state[6] = XEN_DOMAIN_GONE;
	domains_check(srv.domains);
	ck_assert_uint_eq(events("@releaseDomain"), 1);
	ck_assert(!domains_is_introduced(srv.domains, 6));
}
END_TEST

START_TEST(a_query_that_fails_releases_nothing)
{
	guest_up(5, 77);
	xd.state[5] = XEN_DOMAIN_DYING;
	xd.query_fails = true;
	domains_check(srv.domains);
	ck_assert(domains_is_introduced(srv.domains, 5));
	xd.query_fails = false;
	domains_check(srv.domains);
	ck_assert(!domains_is_introduced(srv.domains, 5));
}
END_TEST

START_TEST(shutdown_fires_release_domain_once_until_resume)
{
	guest_up(5, 77);
	watch("@releaseDomain");
	xd.state[5] = XEN_DOMAIN_SHUTDOWN;
	domains_check(srv.domains);
	ck_assert_uint_eq(events("@releaseDomain"), 1);
	domains_check(srv.domains);
	ck_assert_uint_eq(events("@releaseDomain"), 0);
	/* Shut down is not gone: it is still served. */
	ck_assert(domains_is_introduced(srv.domains, 5));
	GOK(5, 77, XS_WRITE, "x\0y");
	/* RESUME clears the latch: the next shutdown is told again. */
	OK(XS_RESUME, "5\0");
	domains_check(srv.domains);
	ck_assert_uint_eq(events("@releaseDomain"), 1);
}
END_TEST

START_TEST(a_dead_domain_never_introduced_leaves_no_trace)
{
	xd.state[8] = XEN_DOMAIN_RUNNING;
	OK(XS_WRITE, "/shared\0s");
	OK(XS_SET_PERMS, "/shared\0n0\0r8\0");
	OK(XS_WRITE, "/owned\0o");
	OK(XS_SET_PERMS, "/owned\0n8\0");
	domains_check(srv.domains);
	ck_assert(store_domid_referenced(&srv.store, 8));
	xd.state[8] = XEN_DOMAIN_GONE;
	domains_check(srv.domains);
	ck_assert(!store_domid_referenced(&srv.store, 8));
	OK(XS_GET_PERMS, "/shared\0");
	ck_assert_str_eq(rbuf, "n0");
	ERR(XS_READ, "/owned\0", "ENOENT");
}
END_TEST

/* ---- SET_TARGET and features ---- */

START_TEST(set_target_gives_the_stubdom_its_targets_rights)
{
	guest_up(5, 77);
	guest_up(6, 78);
	GOK(5, 77, XS_WRITE, "secret\0s");
	ck_assert_uint_eq(gxs(6, 78, XS_READ, 0,
			      UNIT_BYTES("/local/domain/5/secret\0")), XS_ERROR);
	ck_assert_str_eq(rbuf, "EACCES");
	ERR(XS_SET_TARGET, "6\0009\0", "ENOENT");
	ERR(XS_SET_TARGET, "9\0005\0", "ENOENT");
	ERR(XS_SET_TARGET, "6\0", "EINVAL");

	OK(XS_SET_TARGET, "6\0005\0");
	ck_assert_uint_eq(gxs(6, 78, XS_READ, 0,
			      UNIT_BYTES("/local/domain/5/secret\0")), XS_READ);
	ck_assert_str_eq(rbuf, "s");
	/* Its target gone, the stubdom acts for nobody. */
	OK(XS_RELEASE, "5\0");
	ck_assert_uint_eq(conn_of(6)->who.target, DOMID_NONE);
}
END_TEST

START_TEST(features_are_set_before_introduce_only)
{
	unsigned int f;

	xd_guest(5);
	OK(XS_TYPE_GET_FEATURE, "5\0");
	ck_assert_uint_eq(strtoul(rbuf, NULL, 10), DOMAIN_FEATURES_ALL);
	OK(XS_TYPE_SET_FEATURE, "5\0003\0");
	ERR(XS_TYPE_SET_FEATURE, "5\00016\0", "EINVAL");
	ERR(XS_TYPE_GET_FEATURE, "9\0", "ENOENT");	/* no such domain */
	ck_assert_uint_eq(introduce(5, 77), XS_INTRODUCE);
	ck_assert_uint_eq(xd.page[5]->server_features, 3);
	ERR(XS_TYPE_SET_FEATURE, "5\0001\0", "EBUSY");
	ck_assert_int_eq(domains_get_features(srv.domains, 5, &f), 0);
	ck_assert_uint_eq(f, 3);
	/* The guest asks for its own. */
	ck_assert_uint_eq(gxs(5, 77, XS_TYPE_GET_FEATURE, 0, UNIT_BYTES("")),
			  XS_TYPE_GET_FEATURE);
	ck_assert_str_eq(rbuf, "3");
}
END_TEST

/* ---- the ring ---- */

START_TEST(a_guest_that_breaks_the_ring_is_dropped_until_it_reconnects)
{
	struct xenstore_domain_interface *intf;

	guest_up(5, 77);
	watch("@releaseDomain");
	GOK(5, 77, XS_WATCH, "w\0gw\0");
	gdrain(5);
	intf = xd.page[5];
	intf->req_prod = intf->req_cons + XENSTORE_RING_SIZE + 1;
	xd_signal(xd_local_port(5, 77));
	settle();
	ck_assert_uint_eq(intf->error, XENSTORE_ERROR_RINGIDX);
	ck_assert_ptr_null(conn_of(5));
	ck_assert_uint_eq(srv.watches.count, 1);
	/* Still known: it is released as ever. */
	ck_assert(domains_is_introduced(srv.domains, 5));
	/* The guest asks to start again (xenstore-ring.txt). */
	intf->connection = XENSTORE_RECONNECT;
	xd_signal(xd_local_port(5, 77));
	settle();
	ck_assert_uint_eq(intf->connection, XENSTORE_CONNECTED);
	ck_assert_uint_eq(intf->error, XENSTORE_ERROR_NONE);
	ck_assert_uint_eq(intf->req_prod, 0);
	ck_assert_ptr_nonnull(conn_of(5));
	GOK(5, 77, XS_WRITE, "back\0yes");
	OK(XS_RELEASE, "5\0");
	ck_assert_uint_eq(events("@releaseDomain"), 1);
}
END_TEST

START_TEST(a_packet_over_the_size_limit_is_a_protocol_error)
{
	struct xenstore_domain_interface *intf;
	struct xsd_sockmsg hdr = { .type = XS_READ, .req_id = 1,
				   .len = XENSTORE_PAYLOAD_MAX + 1 };

	guest_up(5, 77);
	intf = xd.page[5];
	memcpy(intf->req, &hdr, sizeof(hdr));
	intf->req_prod = sizeof(hdr);
	xd_signal(xd_local_port(5, 77));
	settle();
	ck_assert_uint_eq(intf->error, XENSTORE_ERROR_PROTO);
	ck_assert_ptr_null(conn_of(5));
	ck_assert(domains_is_introduced(srv.domains, 5));
}
END_TEST

static Suite *domain_suite(void)
{
	Suite *s = suite_create("domain");
	TCase *intro = tcase_create("introduce");
	TCase *rel = tcase_create("release");
	TCase *other = tcase_create("target and features");
	TCase *ring = tcase_create("ring");

	tcase_add_checked_fixture(intro, rig_setup, rig_teardown);
	tcase_add_test(intro, introduce_serves_the_ring_and_fires_introduce_domain);
	tcase_add_test(intro, introduce_of_a_privileged_domain_fires_nothing);
	tcase_add_test(intro, introduce_again_rebinds_and_resets_the_connection);
	tcase_add_test(intro, introduce_again_ignores_the_page_channel_field);
	tcase_add_test(intro, introduce_refuses_bad_arguments_and_guests);
	tcase_add_test(intro, introduce_that_cannot_bind_leaves_nothing_behind);
	tcase_add_test(intro, introduce_without_xen_is_eio);
	suite_add_tcase(s, intro);

	tcase_add_checked_fixture(rel, rig_setup, rig_teardown);
	tcase_add_test(rel, release_forgets_everything_of_the_domain);
	tcase_add_test(rel, release_refuses_the_store_and_unknown_domains);
	tcase_add_test(rel, a_domain_found_dead_through_virq_dom_exc_is_released);
	tcase_add_test(rel, a_query_that_fails_releases_nothing);
	tcase_add_test(rel, shutdown_fires_release_domain_once_until_resume);
	tcase_add_test(rel, a_dead_domain_never_introduced_leaves_no_trace);
	suite_add_tcase(s, rel);

	tcase_add_checked_fixture(other, rig_setup, rig_teardown);
	tcase_add_test(other, set_target_gives_the_stubdom_its_targets_rights);
	tcase_add_test(other, features_are_set_before_introduce_only);
	suite_add_tcase(s, other);

	tcase_add_checked_fixture(ring, rig_setup, rig_teardown);
	tcase_add_test(ring, a_guest_that_breaks_the_ring_is_dropped_until_it_reconnects);
	tcase_add_test(ring, a_packet_over_the_size_limit_is_a_protocol_error);
	suite_add_tcase(s, ring);
	return s;
}

int main(void)
{
	return unit_main(domain_suite());
}

