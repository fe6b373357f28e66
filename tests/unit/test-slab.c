/*
 * store/slab: blocks of nodes' values.
 */
#include "tests/unit/unit.h"

#include <errno.h>

#include "store/slab.h"

#if defined(__SANITIZE_ADDRESS__)
#define SLAB_UNDER_ASAN 1
#endif

/* Fill p (len bytes) with what block tag holds. */
static void fill(unsigned char *p, size_t len, unsigned int tag)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(tag * 31 + i);
}

static bool holds(const unsigned char *p, size_t len, unsigned int tag)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != (unsigned char)(tag * 31 + i))
			return false;
	return true;
}

/* A freed block is the next one of its class, and a resize within a
 * class keeps the block; a chunk holds many blocks. */
START_TEST(freed_blocks_are_used_again)
{
	unsigned char *a, *b, *c;
	size_t before;

#ifdef SLAB_UNDER_ASAN
	return;		/* every block is malloc's there */
#endif
	slab_forget_free();
	before = slab_bytes();
	a = slab_alloc(20);
	b = slab_alloc(24);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(slab_bytes(), before + 4096 - 16);	/* one chunk */
	ck_assert_ptr_eq(b, a + 24);	/* the class of 17 to 24 bytes */
	slab_free(a, 20);
	c = slab_alloc(17);
	ck_assert_ptr_eq(c, a);
	ck_assert_ptr_eq(slab_resize(c, 17, 24), c);
	for (int i = 0; i < 100; i++)
		ck_assert_ptr_nonnull(slab_alloc(24));
	ck_assert_uint_eq(slab_bytes(), before + 4096 - 16);
}
END_TEST

/* Blocks of every length, resized across classes and to and from
 * malloc's sizes, freed in any order: each keeps its bytes, none
 * overlaps another. */
START_TEST(blocks_keep_their_bytes_through_random_changes)
{
	enum { N = 2000 };
	static unsigned char *p[N];
	static size_t len[N];
	unsigned int seed = 99;

	for (int step = 0; step < 40000; step++) {
		unsigned int i, r;

		seed = seed * 1103515245u + 12345u;
		i = (seed >> 8) % N;
		r = (seed >> 20) % 8;
		if (!p[i]) {
			len[i] = 1 + (seed >> 4) % (r == 0 ? 600 : 80);
			p[i] = slab_alloc(len[i]);
			ck_assert_ptr_nonnull(p[i]);
			fill(p[i], len[i], i);
		} else if (r < 3) {
			size_t to = 1 + (seed >> 3) % (r == 0 ? 600 : 80);
			unsigned char *q;

			ck_assert_msg(holds(p[i], len[i], i), "block %u", i);
			q = slab_resize(p[i], len[i], to);
			ck_assert_ptr_nonnull(q);
			ck_assert(holds(q, len[i] < to ? len[i] : to, i));
			p[i] = q;
			len[i] = to;
			fill(p[i], len[i], i);
		} else {
			ck_assert_msg(holds(p[i], len[i], i), "block %u", i);
			slab_free(p[i], len[i]);
			p[i] = NULL;
		}
	}
	for (unsigned int i = 0; i < N; i++) {
		if (p[i]) {
			ck_assert_msg(holds(p[i], len[i], i), "block %u", i);
			slab_free(p[i], len[i]);
		}
	}
}
END_TEST

/* A slab past 8 MiB takes its chunks one after another out of regions
 * that the kernel may back with huge pages (slab.c), not one malloc
 * each: a chunk of 4080 bytes follows the one before it, without
 * malloc's 16 bytes between, and every block keeps its bytes. */
START_TEST(chunks_past_8_mib_are_carved_out_of_regions)
{
	enum { LEN = 256, PER_CHUNK = 15, N = 3200 * PER_CHUNK };
	static unsigned char *p[N];
	unsigned int carved = 0, malloced = 0;
	size_t before;

#ifdef SLAB_UNDER_ASAN
	return;		/* every block is malloc's there */
#endif
	slab_forget_free();
	before = slab_bytes();
	for (unsigned int i = 0; i < N; i++) {
		p[i] = slab_alloc(LEN);
		ck_assert_ptr_nonnull(p[i]);
		fill(p[i], LEN, i);
	}
	ck_assert_uint_eq(slab_bytes() - before, N / PER_CHUNK * (4096 - 16));
	/* The first block of each chunk, against the one of the chunk
	 * before: 4080 bytes on in a region, 4096 from malloc. */
	for (unsigned int c = 1; c < N / PER_CHUNK; c++) {
		ptrdiff_t d = p[c * PER_CHUNK] - p[(c - 1) * PER_CHUNK];

		carved += d == 4096 - 16;
		malloced += d == 4096;
	}
	ck_assert_uint_gt(carved, 1000);	/* the last 5 MiB at least */
	ck_assert_uint_gt(malloced, 1000);	/* the first 8 MiB */
	for (unsigned int i = 0; i < N; i++) {
		ck_assert_msg(holds(p[i], LEN, i), "block %u", i);
		slab_free(p[i], LEN);
	}
}
END_TEST

static Suite *slab_suite(void)
{
	Suite *s = suite_create("slab");
	TCase *t = tcase_create("slab");

	tcase_add_test(t, freed_blocks_are_used_again);
	tcase_add_test(t, blocks_keep_their_bytes_through_random_changes);
	tcase_add_test(t, chunks_past_8_mib_are_carved_out_of_regions);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return unit_main(slab_suite());
}
