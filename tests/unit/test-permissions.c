/* permissions: parsing, formatting and access decisions. */
#include <errno.h>

#include "tests/unit/unit.h"

#include "permissions/permissions.h"

#define ALL (PERM_READ | PERM_WRITE | PERM_OWNER)

/* Parse a NULL-terminated list of strings; the test fails on error. */
static struct perms *parse_ok(const char *const *strs)
{
	unsigned int n = 0;
	struct perms *p;

	while (strs[n])
		n++;
	p = perms_parse(strs, n);
	ck_assert_msg(p != NULL, "perms_parse failed on \"%s\"...", strs[0]);
	ck_assert_uint_eq(p->refs, 1);
	ck_assert_uint_eq(p->n, n);
	return p;
}

/* perms_parse on one string must fail with EINVAL. */
static void parse_one_fails(const char *s)
{
	const char *strs[] = { s };

	errno = 0;
	ck_assert_msg(perms_parse(strs, 1) == NULL, "\"%s\" accepted", s);
	ck_assert_int_eq(errno, EINVAL);
}

static struct who dom(uint32_t domid)
{
	struct who w = { .domid = domid, .target = DOMID_NONE,
			 .privileged = false };

	return w;
}

START_TEST(parse_reads_each_letter)
{
	static const char *const strs[] = { "n1", "r2", "w3", "b4", NULL };
	struct perms *p = parse_ok(strs);

	ck_assert_uint_eq(p->e[0].domid, 1);
	ck_assert_uint_eq(p->e[0].access, PERM_NONE);
	ck_assert_uint_eq(p->e[1].domid, 2);
	ck_assert_uint_eq(p->e[1].access, PERM_READ);
	ck_assert_uint_eq(p->e[2].domid, 3);
	ck_assert_uint_eq(p->e[2].access, PERM_WRITE);
	ck_assert_uint_eq(p->e[3].domid, 4);
	ck_assert_uint_eq(p->e[3].access, PERM_READ | PERM_WRITE);
	perms_unref(p);
}
END_TEST

START_TEST(parse_accepts_domid_bounds)
{
	static const char *const strs[] = { "r0", "b65535", NULL };
	struct perms *p = parse_ok(strs);

	ck_assert_uint_eq(p->e[0].domid, 0);
	ck_assert_uint_eq(p->e[1].domid, 65535);
	perms_unref(p);
}
END_TEST

START_TEST(parse_rejects_bad_letter)
{
	parse_one_fails("x5");
	parse_one_fails("R5");
	parse_one_fails("5");
	parse_one_fails("");
}
END_TEST

START_TEST(parse_rejects_missing_domid)
{
	parse_one_fails("r");
	parse_one_fails("b");
}
END_TEST

START_TEST(parse_rejects_non_numeric_domid)
{
	parse_one_fails("rx");
	parse_one_fails("r5x");
	parse_one_fails("r-1");
	parse_one_fails("r+1");
	parse_one_fails("r 1");
	parse_one_fails("r0x10");
}
END_TEST

START_TEST(parse_rejects_domid_over_65535)
{
	parse_one_fails("r65536");
	parse_one_fails("r4294967296");
	parse_one_fails("r99999999999999999999999");
}
END_TEST

START_TEST(parse_rejects_empty_list)
{
	static const char *const strs[] = { "r0" };

	errno = 0;
	ck_assert_ptr_null(perms_parse(strs, 0));
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(parse_rejects_list_with_one_bad_entry)
{
	static const char *const strs[] = { "n0", "r5", "q7" };

	errno = 0;
	ck_assert_ptr_null(perms_parse(strs, 3));
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(format_round_trips_through_parse)
{
	static const char *const strs[] = { "n0", "r7", "w65535", "b12", NULL };
	struct perms *p = parse_ok(strs);

	for (unsigned int i = 0; i < p->n; i++) {
		char buf[16];

		perm_format(&p->e[i], buf);
		ck_assert_str_eq(buf, strs[i]);
	}
	perms_unref(p);
}
END_TEST

START_TEST(access_of_privileged_is_everything)
{
	static const char *const strs[] = { "n3", "n0", NULL };
	struct perms *p = parse_ok(strs);
	struct who w = { .domid = 0, .target = DOMID_NONE, .privileged = true };

	ck_assert_uint_eq(perms_access(p, &w), ALL);
	w.domid = 9;	/* a privileged domain other than 0 */
	ck_assert_uint_eq(perms_access(p, &w), ALL);
	perms_unref(p);
}
END_TEST

START_TEST(access_of_owner_is_everything)
{
	static const char *const strs[] = { "n5", "n5", NULL };
	struct perms *p = parse_ok(strs);
	struct who w = dom(5);

	/* Even an explicit "n5" entry does not restrict the owner. */
	ck_assert_uint_eq(perms_access(p, &w), ALL);
	perms_unref(p);
}
END_TEST

START_TEST(access_of_dom0_without_privilege_is_not_everything)
{
	static const char *const strs[] = { "n5", NULL };
	struct perms *p = parse_ok(strs);
	struct who w = dom(0);

	ck_assert_uint_eq(perms_access(p, &w), PERM_NONE);
	perms_unref(p);
}
END_TEST

START_TEST(access_from_explicit_entry)
{
	static const char *const strs[] = { "n0", "r5", "w6", "b7", NULL };
	struct perms *p = parse_ok(strs);
	struct who w5 = dom(5), w6 = dom(6), w7 = dom(7);

	ck_assert_uint_eq(perms_access(p, &w5), PERM_READ);
	ck_assert_uint_eq(perms_access(p, &w6), PERM_WRITE);
	ck_assert_uint_eq(perms_access(p, &w7), PERM_READ | PERM_WRITE);
	perms_unref(p);
}
END_TEST

START_TEST(access_defaults_to_entry_zero)
{
	static const char *const r_strs[] = { "r0", "w5", NULL };
	static const char *const n_strs[] = { "n0", "w5", NULL };
	struct perms *r = parse_ok(r_strs), *n = parse_ok(n_strs);
	struct who w = dom(8);

	ck_assert_uint_eq(perms_access(r, &w), PERM_READ);
	ck_assert_uint_eq(perms_access(n, &w), PERM_NONE);
	perms_unref(r);
	perms_unref(n);
}
END_TEST

START_TEST(access_inherits_from_target_domain)
{
	static const char *const strs[] = { "n0", "r5", NULL };
	static const char *const owned[] = { "n5", NULL };
	struct perms *p = parse_ok(strs), *o = parse_ok(owned);
	struct who w = dom(9);

	ck_assert_uint_eq(perms_access(p, &w), PERM_NONE);
	w.target = 5;	/* domain 9 acts for domain 5 */
	ck_assert_uint_eq(perms_access(p, &w), PERM_READ);
	/* ... and owns what its target owns. */
	ck_assert_uint_eq(perms_access(o, &w), ALL);
	perms_unref(p);
	perms_unref(o);
}
END_TEST

START_TEST(access_first_matching_entry_wins)
{
	static const char *const strs[] = { "n0", "r5", "b5", NULL };
	static const char *const target_first[] = { "n0", "w5", "r9", NULL };
	struct perms *p = parse_ok(strs), *t = parse_ok(target_first);
	struct who w = dom(5), tw = dom(9);

	ck_assert_uint_eq(perms_access(p, &w), PERM_READ);
	/* The target's entry comes first, so it decides for domain 9. */
	tw.target = 5;
	ck_assert_uint_eq(perms_access(t, &tw), PERM_WRITE);
	perms_unref(p);
	perms_unref(t);
}
END_TEST

START_TEST(with_owner_shares_when_owner_is_same)
{
	static const char *const strs[] = { "n5", "r6", NULL };
	struct perms *p = parse_ok(strs);
	struct perms *q = perms_with_owner(p, 5);

	ck_assert_ptr_eq(q, p);
	ck_assert_uint_eq(p->refs, 2);
	perms_unref(q);
	ck_assert_uint_eq(p->refs, 1);
	perms_unref(p);
}
END_TEST

START_TEST(with_owner_copies_when_owner_differs)
{
	static const char *const strs[] = { "r0", "w6", "b7", NULL };
	struct perms *p = parse_ok(strs);
	struct perms *q = perms_with_owner(p, 5);

	ck_assert_ptr_nonnull(q);
	ck_assert_ptr_ne(q, p);
	ck_assert_uint_eq(p->refs, 1);
	ck_assert_uint_eq(q->refs, 1);
	ck_assert_uint_eq(q->n, 3);
	ck_assert_uint_eq(q->e[0].domid, 5);
	ck_assert_uint_eq(q->e[0].access, PERM_READ);
	ck_assert_uint_eq(q->e[1].domid, 6);
	ck_assert_uint_eq(q->e[1].access, PERM_WRITE);
	ck_assert_uint_eq(q->e[2].domid, 7);
	ck_assert_uint_eq(q->e[2].access, PERM_READ | PERM_WRITE);
	/* The original is untouched. */
	ck_assert_uint_eq(p->e[0].domid, 0);
	perms_unref(q);
	perms_unref(p);
}
END_TEST

START_TEST(refcount_frees_on_last_unref)
{
	struct perms *p = perms_alloc(2);

	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p->refs, 1);
	ck_assert_uint_eq(p->n, 2);
	ck_assert_uint_eq(p->e[1].domid, 0);
	ck_assert_uint_eq(p->e[1].access, 0);
	ck_assert_ptr_eq(perms_ref(p), p);
	ck_assert_uint_eq(p->refs, 2);
	perms_unref(p);
	ck_assert_uint_eq(p->refs, 1);
	perms_unref(p);	/* the sanitizer build reports a leak otherwise */
	perms_unref(NULL);
}
END_TEST

START_TEST(equal_compares_entries)
{
	static const char *const a_strs[] = { "n0", "r5", NULL };
	static const char *const b_strs[] = { "n0", "r5", NULL };
	static const char *const c_strs[] = { "n0", "w5", NULL };
	static const char *const d_strs[] = { "n0", NULL };
	struct perms *a = parse_ok(a_strs), *b = parse_ok(b_strs);
	struct perms *c = parse_ok(c_strs), *d = parse_ok(d_strs);

	ck_assert(perms_equal(a, b));
	ck_assert(!perms_equal(a, c));
	ck_assert(!perms_equal(a, d));
	perms_unref(a);
	perms_unref(b);
	perms_unref(c);
	perms_unref(d);
}
END_TEST

static Suite *permissions_suite(void)
{
	Suite *s = suite_create("permissions");
	TCase *t = tcase_create("parse");

	tcase_add_test(t, parse_reads_each_letter);
	tcase_add_test(t, parse_accepts_domid_bounds);
	tcase_add_test(t, parse_rejects_bad_letter);
	tcase_add_test(t, parse_rejects_missing_domid);
	tcase_add_test(t, parse_rejects_non_numeric_domid);
	tcase_add_test(t, parse_rejects_domid_over_65535);
	tcase_add_test(t, parse_rejects_empty_list);
	tcase_add_test(t, parse_rejects_list_with_one_bad_entry);
	tcase_add_test(t, format_round_trips_through_parse);
	suite_add_tcase(s, t);

	t = tcase_create("access");
	tcase_add_test(t, access_of_privileged_is_everything);
	tcase_add_test(t, access_of_owner_is_everything);
	tcase_add_test(t, access_of_dom0_without_privilege_is_not_everything);
	tcase_add_test(t, access_from_explicit_entry);
	tcase_add_test(t, access_defaults_to_entry_zero);
	tcase_add_test(t, access_inherits_from_target_domain);
	tcase_add_test(t, access_first_matching_entry_wins);
	suite_add_tcase(s, t);

	t = tcase_create("lists");
	tcase_add_test(t, with_owner_shares_when_owner_is_same);
	tcase_add_test(t, with_owner_copies_when_owner_differs);
	tcase_add_test(t, refcount_frees_on_last_unref);
	tcase_add_test(t, equal_compares_entries);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return unit_main(permissions_suite());
}
