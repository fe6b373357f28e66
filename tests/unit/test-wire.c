/* protocol/wire: argument splitting, error and type names, replies. */
#include <errno.h>
#include <limits.h>

#include "tests/unit/unit.h"

/* A request of type READ carrying the given bytes. */
#define REQ(u, lit) unit_request((u), XS_READ, 1, 0, UNIT_BYTES(lit))

START_TEST(decode_header_reads_all_fields)
{
	struct xsd_sockmsg in = { .type = XS_WRITE, .req_id = 0xdeadbeef,
				  .tx_id = 42, .len = 4096 }, out;
	unsigned char bytes[WIRE_HDR_LEN];

	ck_assert_uint_eq(WIRE_HDR_LEN, 16);
	memcpy(bytes, &in, sizeof(bytes));
	wire_decode_header(bytes, &out);
	ck_assert_uint_eq(out.type, XS_WRITE);
	ck_assert_uint_eq(out.req_id, 0xdeadbeef);
	ck_assert_uint_eq(out.tx_id, 42);
	ck_assert_uint_eq(out.len, 4096);
}
END_TEST

START_TEST(count_strings_counts_nuls)
{
	struct unit_req u;

	ck_assert_uint_eq(wire_count_strings(REQ(&u, "")), 0);
	ck_assert_uint_eq(wire_count_strings(REQ(&u, "abc")), 0);
	ck_assert_uint_eq(wire_count_strings(REQ(&u, "abc\0")), 1);
	ck_assert_uint_eq(wire_count_strings(REQ(&u, "a\0b\0")), 2);
	ck_assert_uint_eq(wire_count_strings(REQ(&u, "a\0b")), 1);
	ck_assert_uint_eq(wire_count_strings(REQ(&u, "\0\0\0")), 3);
}
END_TEST

START_TEST(single_arg_with_one_nul_at_end_is_the_string)
{
	struct unit_req u;
	const struct request *r = REQ(&u, "/local/domain/0\0");

	ck_assert_ptr_eq(wire_single_arg(r), r->payload);
	ck_assert_str_eq(wire_single_arg(r), "/local/domain/0");
	/* An empty string is still one argument. */
	ck_assert_str_eq(wire_single_arg(REQ(&u, "\0")), "");
}
END_TEST

START_TEST(single_arg_without_nul_is_null)
{
	struct unit_req u;

	ck_assert_ptr_null(wire_single_arg(REQ(&u, "/a")));
}
END_TEST

START_TEST(single_arg_with_two_nuls_is_null)
{
	struct unit_req u;

	ck_assert_ptr_null(wire_single_arg(REQ(&u, "/a\0/b\0")));
	ck_assert_ptr_null(wire_single_arg(REQ(&u, "/a\0\0")));
	ck_assert_ptr_null(wire_single_arg(REQ(&u, "/a\0b")));
}
END_TEST

START_TEST(single_arg_of_empty_payload_is_null)
{
	struct unit_req u;

	ck_assert_ptr_null(wire_single_arg(REQ(&u, "")));
}
END_TEST

START_TEST(split_returns_each_string)
{
	struct unit_req u;
	const char *argv[4] = { 0 };

	ck_assert_uint_eq(wire_split(REQ(&u, "a\0bc\0\0d\0"), argv, 4), 4);
	ck_assert_str_eq(argv[0], "a");
	ck_assert_str_eq(argv[1], "bc");
	ck_assert_str_eq(argv[2], "");
	ck_assert_str_eq(argv[3], "d");
	ck_assert_ptr_eq(argv[0], u.req.payload);
}
END_TEST

START_TEST(split_stops_at_max)
{
	struct unit_req u;
	const char *argv[3] = { 0 };

	ck_assert_uint_eq(wire_split(REQ(&u, "a\0b\0c\0"), argv, 2), 2);
	ck_assert_str_eq(argv[1], "b");
	ck_assert_ptr_null(argv[2]);
}
END_TEST

START_TEST(split_ignores_bytes_after_last_nul)
{
	struct unit_req u;
	const char *argv[3] = { 0 };

	ck_assert_uint_eq(wire_split(REQ(&u, "a\0tail"), argv, 3), 1);
	ck_assert_str_eq(argv[0], "a");
	ck_assert_uint_eq(wire_split(REQ(&u, "no nul"), argv, 3), 0);
	ck_assert_uint_eq(wire_split(REQ(&u, ""), argv, 3), 0);
}
END_TEST

START_TEST(error_name_of_known_errors)
{
	ck_assert_str_eq(wire_error_name(EINVAL), "EINVAL");
	ck_assert_str_eq(wire_error_name(EACCES), "EACCES");
	ck_assert_str_eq(wire_error_name(EEXIST), "EEXIST");
	ck_assert_str_eq(wire_error_name(EISDIR), "EISDIR");
	ck_assert_str_eq(wire_error_name(ENOENT), "ENOENT");
	ck_assert_str_eq(wire_error_name(ENOMEM), "ENOMEM");
	ck_assert_str_eq(wire_error_name(ENOSPC), "ENOSPC");
	ck_assert_str_eq(wire_error_name(EIO), "EIO");
	ck_assert_str_eq(wire_error_name(ENOTEMPTY), "ENOTEMPTY");
	ck_assert_str_eq(wire_error_name(ENOSYS), "ENOSYS");
	ck_assert_str_eq(wire_error_name(EROFS), "EROFS");
	ck_assert_str_eq(wire_error_name(EBUSY), "EBUSY");
	ck_assert_str_eq(wire_error_name(EAGAIN), "EAGAIN");
	ck_assert_str_eq(wire_error_name(EISCONN), "EISCONN");
	ck_assert_str_eq(wire_error_name(E2BIG), "E2BIG");
	ck_assert_str_eq(wire_error_name(EPERM), "EPERM");
}
END_TEST

START_TEST(error_name_of_unknown_errno_is_einval)
{
	ck_assert_str_eq(wire_error_name(ELOOP), "EINVAL");
	ck_assert_str_eq(wire_error_name(0), "EINVAL");
	ck_assert_str_eq(wire_error_name(-1), "EINVAL");
	ck_assert_str_eq(wire_error_name(123456), "EINVAL");
}
END_TEST

START_TEST(type_name_of_known_types)
{
	ck_assert_str_eq(wire_type_name(XS_CONTROL), "CONTROL");
	ck_assert_str_eq(wire_type_name(XS_DIRECTORY), "DIRECTORY");
	ck_assert_str_eq(wire_type_name(XS_READ), "READ");
	ck_assert_str_eq(wire_type_name(XS_WRITE), "WRITE");
	ck_assert_str_eq(wire_type_name(XS_TRANSACTION_START),
			 "TRANSACTION_START");
	ck_assert_str_eq(wire_type_name(XS_ERROR), "ERROR");
	ck_assert_str_eq(wire_type_name(XS_DIRECTORY_PART), "DIRECTORY_PART");
	ck_assert_str_eq(wire_type_name(XS_TYPE_RESTRICT_REMOVED), "RESTRICT");
	ck_assert_str_eq(wire_type_name(XS_TYPE_SET_QUOTA), "SET_QUOTA");
}
END_TEST

START_TEST(type_name_of_every_valid_type_is_known)
{
	for (uint32_t t = 0; t < XS_TYPE_MAX; t++) {
		ck_assert_msg(strcmp(wire_type_name(t), "UNKNOWN") != 0,
			      "type %u has no name", (unsigned int)t);
	}
}
END_TEST

START_TEST(type_name_of_unknown_type)
{
	ck_assert_str_eq(wire_type_name(XS_TYPE_MAX), "UNKNOWN");
	ck_assert_str_eq(wire_type_name(1000), "UNKNOWN");
	ck_assert_str_eq(wire_type_name(UINT32_MAX), "UNKNOWN");
}
END_TEST

START_TEST(reply_append_fills_up_to_payload_max)
{
	static char big[XENSTORE_PAYLOAD_MAX];
	struct reply r;

	memset(big, 'x', sizeof(big));
	reply_reset(&r);
	reply_append(&r, big, XENSTORE_PAYLOAD_MAX - 1);
	reply_append(&r, "y", 1);
	ck_assert(!r.overflow);
	ck_assert_uint_eq(r.len, XENSTORE_PAYLOAD_MAX);
	ck_assert_int_eq(r.buf[XENSTORE_PAYLOAD_MAX - 1], 'y');
	/* An empty append at the limit is no overflow. */
	reply_append(&r, "", 0);
	ck_assert(!r.overflow);
}
END_TEST

START_TEST(reply_append_past_payload_max_overflows)
{
	static char big[XENSTORE_PAYLOAD_MAX + 1];
	struct reply r;

	reply_reset(&r);
	reply_append(&r, big, XENSTORE_PAYLOAD_MAX);
	reply_append(&r, "z", 1);
	ck_assert(r.overflow);
	ck_assert_uint_eq(r.len, XENSTORE_PAYLOAD_MAX);

	reply_reset(&r);
	ck_assert(!r.overflow);
	ck_assert_uint_eq(r.len, 0);
	reply_append(&r, big, sizeof(big));
	ck_assert(r.overflow);
	ck_assert_uint_eq(r.len, 0);
}
END_TEST

START_TEST(reply_stays_overflowed)
{
	static char big[XENSTORE_PAYLOAD_MAX];
	struct reply r;

	reply_reset(&r);
	reply_append(&r, "ab", 2);
	reply_append(&r, big, sizeof(big));
	ck_assert(r.overflow);
	/* A later append that would fit is dropped too. */
	reply_append(&r, "c", 1);
	reply_append_str(&r, "d");
	reply_printf(&r, "%d", 1);
	ck_assert(r.overflow);
	ck_assert_uint_eq(r.len, 2);
}
END_TEST

START_TEST(reply_append_str_includes_nul)
{
	struct reply r;

	reply_reset(&r);
	reply_append_str(&r, "OK");
	reply_append_str(&r, "");
	ck_assert_uint_eq(r.len, 4);
	ck_assert_mem_eq(r.buf, "OK\0\0", 4);
}
END_TEST

START_TEST(reply_printf_appends_without_nul)
{
	struct reply r;

	reply_reset(&r);
	reply_append(&r, "g=", 2);
	reply_printf(&r, "%u-%s", 42u, "x");
	ck_assert(!r.overflow);
	ck_assert_uint_eq(r.len, 6);
	ck_assert_mem_eq(r.buf, "g=42-x", 6);
}
END_TEST

START_TEST(reply_printf_may_fill_the_reply_exactly)
{
	struct reply r;

	reply_reset(&r);
	r.len = XENSTORE_PAYLOAD_MAX - 6;
	reply_printf(&r, "%s", "abcdef");
	ck_assert(!r.overflow);
	ck_assert_uint_eq(r.len, XENSTORE_PAYLOAD_MAX);
	ck_assert_mem_eq(r.buf + XENSTORE_PAYLOAD_MAX - 6, "abcdef", 6);
}
END_TEST

START_TEST(reply_printf_past_payload_max_overflows)
{
	static char big[XENSTORE_PAYLOAD_MAX];
	struct reply r;

	reply_reset(&r);
	reply_append(&r, big, XENSTORE_PAYLOAD_MAX - 3);
	reply_printf(&r, "%s", "abcdef");
	ck_assert(r.overflow);
	ck_assert_uint_eq(r.len, XENSTORE_PAYLOAD_MAX - 3);
}
END_TEST

START_TEST(parse_uint_accepts_whole_numbers)
{
	unsigned long v = 99;

	ck_assert(wire_parse_uint("0", 10, &v));
	ck_assert_uint_eq(v, 0);
	ck_assert(wire_parse_uint("65535", 65535, &v));
	ck_assert_uint_eq(v, 65535);
	ck_assert(wire_parse_uint("007", 10, &v));
	ck_assert_uint_eq(v, 7);
	ck_assert(wire_parse_uint("4294967295", UINT32_MAX, &v));
	ck_assert_uint_eq(v, UINT32_MAX);
}
END_TEST

START_TEST(parse_uint_rejects_malformed_or_too_large)
{
	unsigned long v = 99;

	ck_assert(!wire_parse_uint("", 10, &v));
	ck_assert(!wire_parse_uint("x", 10, &v));
	ck_assert(!wire_parse_uint("1x", 10, &v));
	ck_assert(!wire_parse_uint("-1", 10, &v));
	ck_assert(!wire_parse_uint("+1", 10, &v));
	ck_assert(!wire_parse_uint(" 1", 10, &v));
	ck_assert(!wire_parse_uint("1 ", 10, &v));
	ck_assert(!wire_parse_uint("11", 10, &v));
	ck_assert(!wire_parse_uint("65536", 65535, &v));
	ck_assert(!wire_parse_uint("99999999999999999999999999", ULONG_MAX, &v));
	ck_assert_uint_eq(v, 99);	/* untouched on failure */
}
END_TEST

static Suite *wire_suite(void)
{
	Suite *s = suite_create("wire");
	TCase *t = tcase_create("args");

	tcase_add_test(t, decode_header_reads_all_fields);
	tcase_add_test(t, count_strings_counts_nuls);
	tcase_add_test(t, single_arg_with_one_nul_at_end_is_the_string);
	tcase_add_test(t, single_arg_without_nul_is_null);
	tcase_add_test(t, single_arg_with_two_nuls_is_null);
	tcase_add_test(t, single_arg_of_empty_payload_is_null);
	tcase_add_test(t, split_returns_each_string);
	tcase_add_test(t, split_stops_at_max);
	tcase_add_test(t, split_ignores_bytes_after_last_nul);
	suite_add_tcase(s, t);

	t = tcase_create("names");
	tcase_add_test(t, error_name_of_known_errors);
	tcase_add_test(t, error_name_of_unknown_errno_is_einval);
	tcase_add_test(t, type_name_of_known_types);
	tcase_add_test(t, type_name_of_every_valid_type_is_known);
	tcase_add_test(t, type_name_of_unknown_type);
	suite_add_tcase(s, t);

	t = tcase_create("reply");
	tcase_add_test(t, reply_append_fills_up_to_payload_max);
	tcase_add_test(t, reply_append_past_payload_max_overflows);
	tcase_add_test(t, reply_stays_overflowed);
	tcase_add_test(t, reply_append_str_includes_nul);
	tcase_add_test(t, reply_printf_appends_without_nul);
	tcase_add_test(t, reply_printf_may_fill_the_reply_exactly);
	tcase_add_test(t, reply_printf_past_payload_max_overflows);
	suite_add_tcase(s, t);

	t = tcase_create("numbers");
	tcase_add_test(t, parse_uint_accepts_whole_numbers);
	tcase_add_test(t, parse_uint_rejects_malformed_or_too_large);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return unit_main(wire_suite());
}
