/*
 * domains/restore.c: serving the saved domains again after a restart (the
 * database a daemon left, the guests alive or dead meanwhile), over the
 * hypervisor double (domain_rig.h).
 */
#include "tests/unit/domain_rig.h"

START_TEST(restore_serves_a_live_domain_again_with_its_watches)
{
	guest_up(5, 77);
	guest_up(6, 78);
	OK(XS_SET_TARGET, "6\0005\0");
	GOK(5, 77, XS_WATCH, "w\0gw\0");
	gdrain(5);	/* its first event */
	restart();
	watch("@releaseDomain");

	domains_restore(srv.domains, true);

	ck_assert(domains_is_introduced(srv.domains, 5));
	ck_assert(domains_is_introduced(srv.domains, 6));
	ck_assert_uint_eq(xd.mapped[5], 1);
	ck_assert_int_gt(xd_local_port(5, 77), 0);
	ck_assert_uint_eq(events("@releaseDomain"), 0);
	ck_assert_uint_eq(conn_of(6)->who.target, 5);
	ck_assert(conn_of(5)->restored);
	/* Its watch is back, and fires once for what it may have missed. */
	ck_assert_uint_eq(srv.watches.count, 2);
	settle();
	ck_assert(xd_guest_recv(5, &rhdr, rbuf));
	ck_assert_uint_eq(rhdr.type, XS_WATCH_EVENT);
	ck_assert_mem_eq(rbuf, "w\0gw\0", 6);
	ck_assert(!xd_guest_recv(5, &rhdr, rbuf));
	/* And it is served. */
	GOK(5, 77, XS_WRITE, "after\0restart");
	OK(XS_READ, "/local/domain/5/after\0");
	ck_assert_str_eq(rbuf, "restart");
}
END_TEST

START_TEST(restore_releases_a_domain_that_died_meanwhile)
{
	guest_up(5, 77);
	guest_up(6, 78);
	OK(XS_SET_TARGET, "6\0005\0");
	GOK(5, 77, XS_WRITE, "mine\0v");
	restart();
	watch("@releaseDomain");
	xd.state[5] = XEN_DOMAIN_GONE;

	domains_restore(srv.domains, true);

	ck_assert_uint_eq(events("@releaseDomain"), 1);
	ck_assert(!domains_is_introduced(srv.domains, 5));
	ck_assert_uint_eq(xd.mapped[5], 0);
	ck_assert(!store_domid_referenced(&srv.store, 5));
	ck_assert_uint_eq(conn_of(6)->who.target, DOMID_NONE);
	/* Its record went too: the next start does not release it again. */
	restart();
	watch("@releaseDomain");
	domains_restore(srv.domains, true);
	ck_assert_uint_eq(events("@releaseDomain"), 0);
	ck_assert(domains_is_introduced(srv.domains, 6));
	ck_assert_uint_eq(conn_of(6)->who.target, DOMID_NONE);
}
END_TEST

START_TEST(a_released_domain_is_not_restored)
{
	guest_up(5, 77);
	OK(XS_RELEASE, "5\0");
	restart();
	watch("@releaseDomain");
	domains_restore(srv.domains, true);
	ck_assert(!domains_is_introduced(srv.domains, 5));
	ck_assert_uint_eq(xd.mapped[5], 0);
	ck_assert_uint_eq(events("@releaseDomain"), 0);
}
END_TEST

/* The guest writes a WRITE request's header and the first bytes of its
 * payload ("/local/domain/5/p" and its value follow). */
static const char partial_path[] = "half\0";
static const char partial_value[] = "done";

static void write_partial(void)
{
	struct xsd_sockmsg hdr = {
		.type = XS_WRITE, .req_id = 4242,
		.len = sizeof(partial_path) - 1 + sizeof(partial_value) - 1,
	};

	xd_guest_write(5, &hdr, sizeof(hdr));
	xd_guest_write(5, partial_path, 2);
	xd_signal(xd_local_port(5, 77));
	settle();
	/* Linux's xenbus waits for the ring to empty before it signals
	 * again: the start left the ring. */
	ck_assert_uint_eq(xd.page[5]->req_cons, xd.page[5]->req_prod);
}

/* ... and the rest, after the restart: the request is answered whole. */
static void write_rest_and_check(void)
{
	xd_guest_write(5, partial_path + 2, sizeof(partial_path) - 1 - 2);
	xd_guest_write(5, partial_value, sizeof(partial_value) - 1);
	xd_signal(xd_local_port(5, 77));
	settle();
	ck_assert(xd_guest_recv(5, &rhdr, rbuf));
	ck_assert_uint_eq(rhdr.type, XS_WRITE);
	ck_assert_uint_eq(rhdr.req_id, 4242);
	OK(XS_READ, "/local/domain/5/half\0");
	ck_assert_str_eq(rbuf, "done");
}

START_TEST(restore_keeps_the_start_of_a_request_that_left_the_ring)
{
	guest_up(5, 77);
	write_partial();
	restart();
	domains_restore(srv.domains, true);
	write_rest_and_check();
}
END_TEST

/* A live update: the queued bytes of the guest's connection travel in
 * the image; its watches come back from the database without firing. */
START_TEST(live_update_carries_a_guests_queued_bytes)
{
	static const char extra[] = "queued for the guest";
	struct evbuffer *image = evbuffer_new();
	struct writer w;
	struct reader r;
	size_t len;

	ck_assert_ptr_nonnull(image);
	guest_up(5, 77);
	GOK(5, 77, XS_WATCH, "w\0gw\0");
	gdrain(5);
	write_partial();
	wr_init(&w, image);
	domains_save_conns(srv.domains, &w, conn_of(5), extra, sizeof(extra));
	ck_assert(wr_ok(&w));
	restart();
	domains_restore(srv.domains, false);
	len = evbuffer_get_length(image);
	rd_init(&r, evbuffer_pullup(image, -1), len);
	ck_assert_int_eq(domains_load_conns(srv.domains, &r), 0);
	ck_assert(rd_done(&r));
	ck_assert_uint_eq(srv.watches.count, 1);
	settle();
	/* First what was queued, then nothing but the reply. */
	ck_assert(xd_guest_take(5, rbuf, sizeof(extra)));
	ck_assert_mem_eq(rbuf, extra, sizeof(extra));
	write_rest_and_check();
	ck_assert(!xd_guest_recv(5, &rhdr, rbuf));
	evbuffer_free(image);
}
END_TEST

static Suite *restore_suite(void)
{
	Suite *s = suite_create("restore");
	TCase *t = tcase_create("restore");

	tcase_add_checked_fixture(t, rig_setup_db, rig_teardown);
	tcase_add_test(t, restore_serves_a_live_domain_again_with_its_watches);
	tcase_add_test(t, restore_releases_a_domain_that_died_meanwhile);
	tcase_add_test(t, a_released_domain_is_not_restored);
	tcase_add_test(t, restore_keeps_the_start_of_a_request_that_left_the_ring);
	tcase_add_test(t, live_update_carries_a_guests_queued_bytes);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return unit_main(restore_suite());
}
