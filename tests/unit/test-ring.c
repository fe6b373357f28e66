/*
 * ring: the byte queues of a ring page, with the indices a guest could
 * leave anywhere (free-running, wrapping at 2^32, or impossible).
 */
#include <stdio.h>

#include "tests/unit/unit.h"
#include "domains/ring.h"

static struct xenstore_domain_interface page;

static void setup(void)
{
	memset(&page, 0, sizeof(page));
}

/* The guest side: put bytes into the request queue. */
static void guest_put(const void *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		page.req[(page.req_prod + i) % XENSTORE_RING_SIZE] =
			((const char *)buf)[i];
	page.req_prod += (uint32_t)len;
}

/* The guest side: take bytes from the reply queue. */
static size_t guest_take(char *buf, size_t max)
{
	size_t n = page.rsp_prod - page.rsp_cons;

	if (n > max)
		n = max;
	for (size_t i = 0; i < n; i++)
		buf[i] = page.rsp[(page.rsp_cons + i) % XENSTORE_RING_SIZE];
	page.rsp_cons += (uint32_t)n;
	return n;
}

START_TEST(read_takes_what_the_guest_wrote)
{
	char buf[64];

	guest_put("hello", 5);
	ck_assert_uint_eq(ring_readable(&page), 5);
	ck_assert_int_eq(ring_read(&page, buf, sizeof(buf)), 5);
	ck_assert_mem_eq(buf, "hello", 5);
	ck_assert_uint_eq(page.req_cons, 5);
	ck_assert_int_eq(ring_read(&page, buf, sizeof(buf)), 0);
}
END_TEST

START_TEST(read_stops_at_len)
{
	char buf[3];

	guest_put("abcdef", 6);
	ck_assert_int_eq(ring_read(&page, buf, 3), 3);
	ck_assert_mem_eq(buf, "abc", 3);
	ck_assert_int_eq(ring_read(&page, buf, 3), 3);
	ck_assert_mem_eq(buf, "def", 3);
}
END_TEST

START_TEST(read_wraps_around_the_buffer_end)
{
	char buf[16];

	page.req_cons = page.req_prod = XENSTORE_RING_SIZE - 4;
	guest_put("0123456789", 10);
	ck_assert_int_eq(ring_read(&page, buf, sizeof(buf)), 10);
	ck_assert_mem_eq(buf, "0123456789", 10);
}
END_TEST

START_TEST(indices_wrap_at_two_to_the_32)
{
	char buf[16], out[16];

	page.req_cons = page.req_prod = UINT32_MAX - 2;
	page.rsp_cons = page.rsp_prod = UINT32_MAX - 1;
	guest_put("wrapping", 8);
	ck_assert_uint_eq(page.req_prod, 5);
	ck_assert_int_eq(ring_read(&page, buf, sizeof(buf)), 8);
	ck_assert_mem_eq(buf, "wrapping", 8);
	ck_assert_uint_eq(page.req_cons, 5);
	ck_assert_int_eq(ring_write(&page, "reply", 5), 5);
	ck_assert_uint_eq(page.rsp_prod, 3);
	ck_assert_uint_eq(guest_take(out, sizeof(out)), 5);
	ck_assert_mem_eq(out, "reply", 5);
}
END_TEST

START_TEST(a_full_request_ring_is_legal)
{
	static char big[XENSTORE_RING_SIZE], buf[XENSTORE_RING_SIZE];

	memset(big, 'x', sizeof(big));
	page.req_cons = page.req_prod = 100;
	guest_put(big, sizeof(big));
	ck_assert_int_eq(ring_read(&page, buf, sizeof(buf)),
			 XENSTORE_RING_SIZE);
	ck_assert_mem_eq(buf, big, sizeof(big));
}
END_TEST

START_TEST(write_fills_only_the_free_space)
{
	static char big[2 * XENSTORE_RING_SIZE], out[2 * XENSTORE_RING_SIZE];

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)i;
	page.rsp_cons = page.rsp_prod = 1000;
	ck_assert_int_eq(ring_write(&page, big, sizeof(big)),
			 XENSTORE_RING_SIZE);
	ck_assert_int_eq(ring_write(&page, big, 1), 0);	/* full */
	ck_assert_uint_eq(guest_take(out, 100), 100);
	ck_assert_int_eq(ring_write(&page, big + XENSTORE_RING_SIZE,
				    sizeof(big)), 100);
	ck_assert_uint_eq(guest_take(out + 100, sizeof(out)),
			  XENSTORE_RING_SIZE);
	ck_assert_mem_eq(out, big, XENSTORE_RING_SIZE + 100);
}
END_TEST

START_TEST(impossible_request_indices_are_refused)
{
	char buf[16];

	page.req_cons = 0;
	page.req_prod = XENSTORE_RING_SIZE + 1;
	ck_assert_int_eq(ring_read(&page, buf, sizeof(buf)), -1);
	ck_assert_uint_eq(ring_readable(&page), 0);
	ck_assert_uint_eq(page.req_cons, 0);	/* nothing consumed */
	page.req_cons = 10;
	page.req_prod = 5;			/* producer behind consumer */
	ck_assert_int_eq(ring_read(&page, buf, sizeof(buf)), -1);
}
END_TEST

START_TEST(impossible_reply_indices_are_refused)
{
	page.rsp_cons = 0;
	page.rsp_prod = XENSTORE_RING_SIZE + 7;
	ck_assert_int_eq(ring_write(&page, "x", 1), -1);
	ck_assert_uint_eq(page.rsp_prod, XENSTORE_RING_SIZE + 7);
	page.rsp_cons = 50;
	page.rsp_prod = 49;
	ck_assert_int_eq(ring_write(&page, "x", 1), -1);
}
END_TEST

START_TEST(reset_empties_both_queues)
{
	guest_put("abc", 3);
	ck_assert_int_eq(ring_write(&page, "de", 2), 2);
	ring_reset(&page);
	ck_assert_uint_eq(page.req_cons | page.req_prod | page.rsp_cons |
			  page.rsp_prod, 0);
	ck_assert_uint_eq(ring_readable(&page), 0);
}
END_TEST

START_TEST(evtchn_port_field_follows_error)
{
	static char whole[4096];
	struct xenstore_domain_interface *intf = (void *)whole;

	ck_assert_uint_eq(RING_EVTCHN_PORT_OFFSET, 2076);
	ck_assert_uint_eq(ring_evtchn_port(intf), 0);
	whole[2076] = 9;
	ck_assert_uint_eq(ring_evtchn_port(intf), 9);
}
END_TEST

static Suite *ring_suite(void)
{
	Suite *s = suite_create("ring");
	TCase *t = tcase_create("queues");

	tcase_add_checked_fixture(t, setup, NULL);
	tcase_add_test(t, read_takes_what_the_guest_wrote);
	tcase_add_test(t, read_stops_at_len);
	tcase_add_test(t, read_wraps_around_the_buffer_end);
	tcase_add_test(t, indices_wrap_at_two_to_the_32);
	tcase_add_test(t, a_full_request_ring_is_legal);
	tcase_add_test(t, write_fills_only_the_free_space);
	tcase_add_test(t, impossible_request_indices_are_refused);
	tcase_add_test(t, impossible_reply_indices_are_refused);
	tcase_add_test(t, reset_empties_both_queues);
	tcase_add_test(t, evtchn_port_field_follows_error);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return unit_main(ring_suite());
}
