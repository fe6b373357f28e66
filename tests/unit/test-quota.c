/* quota: names, defaults, options and per-domain overrides, and their
 * record by name.  Linked with the allocator wrapped (fail_alloc.h). */
#include "tests/unit/unit.h"

#include <errno.h>

#include "tests/unit/fail_alloc.h"

#include "quota/quota.h"
#include "schema/schema.h"

START_TEST(defaults_are_upstreams)
{
	struct quotas q;

	quotas_init(&q);
	ck_assert_uint_eq(q.hard[QUOTA_NODES], 1000);
	ck_assert_uint_eq(q.hard[QUOTA_WATCHES], 128);
	ck_assert_uint_eq(q.hard[QUOTA_TRANSACTIONS], 10);
	ck_assert_uint_eq(q.hard[QUOTA_OUTSTANDING], 20);
	ck_assert_uint_eq(q.hard[QUOTA_TXN_NODES], 1024);
	ck_assert_uint_eq(q.hard[QUOTA_MEMORY], 2621440);
	ck_assert_uint_eq(q.hard[QUOTA_NODE_SIZE], 2048);
	ck_assert_uint_eq(q.hard[QUOTA_PATH_MAX], 2048);
	ck_assert_uint_eq(q.hard[QUOTA_PERMS], 5);
	ck_assert_uint_eq(q.soft_memory, 2097152);
	quotas_destroy(&q);
}
END_TEST

START_TEST(names_round_trip_and_upstream_aliases)
{
	enum quota_kind k;

	for (int i = 0; i < QUOTA_KINDS; i++) {
		ck_assert(quota_parse_name(quota_name((enum quota_kind)i), &k));
		ck_assert_int_eq(k, i);
		ck_assert_ptr_nonnull(quota_description((enum quota_kind)i));
	}
	ck_assert(quota_parse_name("node-permissions", &k));
	ck_assert_int_eq(k, QUOTA_PERMS);
	ck_assert(!quota_parse_name("path-length", &k));
	ck_assert(!quota_parse_name("", &k));
}
END_TEST

START_TEST(short_options_are_upstreams)
{
	static const struct { int letter; enum quota_kind kind;
			      const char *long_name; } opts[] = {
		{ 'E', QUOTA_NODES, "entry-nb" },
		{ 'S', QUOTA_NODE_SIZE, "entry-size" },
		{ 'W', QUOTA_WATCHES, "watch-nb" },
		{ 't', QUOTA_TRANSACTIONS, "transaction" },
		{ 'A', QUOTA_PERMS, "perm-nb" },
		{ 'M', QUOTA_PATH_MAX, "path-max" },
	};
	enum quota_kind k;
	int with_letter = 0;
	struct quotas q;

	for (unsigned int i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		ck_assert(quota_parse_option(opts[i].letter, &k));
		ck_assert_int_eq(k, opts[i].kind);
		ck_assert_int_eq(quota_option(k), opts[i].letter);
		ck_assert_str_eq(quota_long_option(k), opts[i].long_name);
	}
	quotas_init(&q);
	for (int i = 0; i < QUOTA_KINDS; i++) {
		with_letter += quota_option((enum quota_kind)i) != 0;
		ck_assert_uint_eq(quota_default((enum quota_kind)i), q.hard[i]);
	}
	quotas_destroy(&q);
	ck_assert_int_eq(with_letter, 6);
	ck_assert(!quota_parse_option('T', &k));
	ck_assert(!quota_parse_option(0, &k));
}
END_TEST

START_TEST(overrides_apply_to_their_domain_until_forgotten)
{
	struct quotas q;

	quotas_init(&q);
	ck_assert_int_eq(quota_set_domain(&q, 5, QUOTA_NODES, 3), 0);
	ck_assert_int_eq(quota_set_domain(&q, 5, QUOTA_WATCHES, 0), 0);
	ck_assert_uint_eq(quota_limit(&q, 5, QUOTA_NODES), 3);
	ck_assert_uint_eq(quota_limit(&q, 5, QUOTA_WATCHES), 0);
	ck_assert_uint_eq(quota_limit(&q, 5, QUOTA_MEMORY), 2621440);
	ck_assert_uint_eq(quota_limit(&q, 6, QUOTA_NODES), 1000);
	q.hard[QUOTA_NODES] = 50;	/* the global one moves, not 5's */
	ck_assert_uint_eq(quota_limit(&q, 5, QUOTA_NODES), 3);
	ck_assert_uint_eq(quota_limit(&q, 6, QUOTA_NODES), 50);
	quota_forget_domain(&q, 5);
	quota_forget_domain(&q, 7);
	ck_assert_uint_eq(quota_limit(&q, 5, QUOTA_NODES), 50);
	quotas_destroy(&q);
}
END_TEST

START_TEST(zero_is_unlimited_and_sizes_follow_upstream)
{
	ck_assert(!quota_exceeded(0, 1000000));
	ck_assert(!quota_exceeded(10, 10));
	ck_assert(quota_exceeded(10, 11));
	ck_assert_uint_eq(quota_node_size(1, 0, 0), 24);
	ck_assert_uint_eq(quota_node_size(2, 100, 10), 16 + 16 + 110);
}
END_TEST

/* q's record, as the database holds it. */
static unsigned char *saved(const struct quotas *q, size_t *len)
{
	struct evbuffer *b = evbuffer_new();
	unsigned char *p;
	struct writer w;

	wr_init(&w, b);
	quotas_save(q, &w);
	ck_assert(wr_ok(&w));
	*len = evbuffer_get_length(b);
	p = malloc(*len);
	ck_assert_ptr_nonnull(p);
	evbuffer_copyout(b, p, *len);
	evbuffer_free(b);
	return p;
}

START_TEST(saved_quotas_load_back)
{
	struct quotas q, back;
	unsigned char *p;
	size_t len;

	quotas_init(&q);
	q.hard[QUOTA_MEMORY] = 77;
	q.soft_memory = 66;
	ck_assert_int_eq(quota_set_domain(&q, 5, QUOTA_NODES, 3), 0);
	ck_assert_int_eq(quota_set_domain(&q, 9, QUOTA_PERMS, 0), 0);
	p = saved(&q, &len);
	quotas_init(&back);
	ck_assert_int_eq(quotas_load(&back, p, len, SCHEMA_DB_VERSION), 0);
	for (int k = 0; k < QUOTA_KINDS; k++) {
		ck_assert_uint_eq(back.hard[k], q.hard[k]);
		for (unsigned int d = 4; d < 11; d++)
			ck_assert_uint_eq(quota_limit(&back, d, k),
					  quota_limit(&q, d, k));
	}
	ck_assert_uint_eq(back.soft_memory, 66);
	quotas_destroy(&back);
	/* Cut short: refused, and nothing changes. */
	quotas_init(&back);
	ck_assert_int_eq(quotas_load(&back, p, len - 1, SCHEMA_DB_VERSION), -1);
	ck_assert_uint_eq(back.hard[QUOTA_MEMORY], 2621440);
	ck_assert_uint_eq(back.soft_memory, 2097152);
	ck_assert_uint_eq(quota_limit(&back, 5, QUOTA_NODES), 1000);
	quotas_destroy(&back);
	quotas_destroy(&q);
	free(p);
}
END_TEST

/* A record from a daemon with a kind this one lacks, and without one of
 * this one's: the others load, the missing one keeps its default. */
START_TEST(quotas_by_name_survive_a_new_kind)
{
	struct evbuffer *b = evbuffer_new();
	struct schema_quota in[] = {
		{ SCHEMA_QUOTA_GLOBAL, "a-later-kind", 12 },
		{ SCHEMA_QUOTA_GLOBAL, "watches", 7 },
		{ 5, "a-later-kind", 1 },
		{ 5, "nodes", 2 },
	};
	struct quotas q;
	unsigned char *p;
	struct writer w;
	size_t len;

	wr_init(&w, b);
	schema_write_quotas_head(&w, 100, 4);
	for (unsigned int i = 0; i < 4; i++)
		schema_write_quota(&w, &in[i]);
	len = evbuffer_get_length(b);
	p = malloc(len);
	ck_assert_ptr_nonnull(p);
	evbuffer_copyout(b, p, len);
	quotas_init(&q);
	ck_assert_int_eq(quotas_load(&q, p, len, SCHEMA_DB_VERSION), 0);
	ck_assert_uint_eq(q.hard[QUOTA_WATCHES], 7);
	ck_assert_uint_eq(q.hard[QUOTA_NODES], 1000);
	ck_assert_uint_eq(quota_limit(&q, 5, QUOTA_NODES), 2);
	ck_assert_uint_eq(quota_limit(&q, 5, QUOTA_WATCHES), 7);
	ck_assert_uint_eq(q.soft_memory, 100);
	quotas_destroy(&q);
	free(p);
	evbuffer_free(b);
}
END_TEST

/* A per-domain quota that cannot get memory (its record, or the table
 * the first one needs) is ENOMEM and changes nothing; never an exit. */
START_TEST(an_override_without_memory_is_enomem)
{
	struct quotas q;
	int n, err;

	quotas_init(&q);
	for (n = 0;; n++) {
		fail_alloc_after = n;
		err = quota_set_domain(&q, 7, QUOTA_NODES, 5);
		fail_alloc_after = -1;
		if (!err)
			break;
		ck_assert_int_eq(err, ENOMEM);
		ck_assert_uint_eq(quota_limit(&q, 7, QUOTA_NODES), 1000);
	}
	ck_assert_int_ge(n, 2);		/* the record, the table */
	ck_assert_uint_eq(quota_limit(&q, 7, QUOTA_NODES), 5);
	quotas_destroy(&q);
}
END_TEST

static Suite *quota_suite(void)
{
	Suite *s = suite_create("quota");
	TCase *t = tcase_create("quota");

	tcase_add_test(t, defaults_are_upstreams);
	tcase_add_test(t, an_override_without_memory_is_enomem);
	tcase_add_test(t, names_round_trip_and_upstream_aliases);
	tcase_add_test(t, short_options_are_upstreams);
	tcase_add_test(t, saved_quotas_load_back);
	tcase_add_test(t, quotas_by_name_survive_a_new_kind);
	tcase_add_test(t, overrides_apply_to_their_domain_until_forgotten);
	tcase_add_test(t, zero_is_unlimited_and_sizes_follow_upstream);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return unit_main(quota_suite());
}
