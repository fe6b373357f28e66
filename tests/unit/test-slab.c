/*
 * store/slab: blocks of nodes' values.
 */
#include "tests/unit/unit.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

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

/* Each length is a class, its blocks exactly that long: a freed block
 * is the next one of its class, a resize to the same length keeps the
 * block; a chunk holds many blocks. */
START_TEST(freed_blocks_are_used_again)
{
	slab_ref a, b, c;
	size_t before;

#ifdef SLAB_UNDER_ASAN
	return;		/* every block is malloc's there */
#endif
	slab_forget_free();
	before = slab_bytes();
	a = slab_alloc(21);
	b = slab_alloc(21);
	ck_assert_uint_ne(a, 0);
	ck_assert_uint_ne(b, 0);
	ck_assert_uint_eq(slab_bytes(), before + 4096);	/* one chunk */
	/* The next block, 21 bytes on. */
	ck_assert_uint_eq(b, a + 21);
	ck_assert_ptr_eq(slab_ptr(b), (char *)slab_ptr(a) + 21);
	slab_free(a);
	c = slab_alloc(21);
	ck_assert_uint_eq(c, a);
	ck_assert_uint_eq(slab_resize(c, 21), c);
	for (int i = 0; i < 100; i++)
		ck_assert_uint_ne(slab_alloc(21), 0);
	ck_assert_uint_eq(slab_bytes(), before + 4096);
	/* 22 bytes are another class's, in a chunk of its own. */
	ck_assert_uint_ne(slab_resize(c, 22), c);
	ck_assert_uint_eq(slab_bytes(), before + 2 * 4096);
}
END_TEST

/* A block's length is known from its reference: every length, the
 * shortest (a block of 4 bytes at least) and the longest too. */
START_TEST(a_block_says_how_long_it_is)
{
	static const size_t lens[] = { 1, 2, 3, 4, 5, 255, 256, 257, 4096,
				       SLAB_MAX };
	slab_ref r[sizeof(lens) / sizeof(lens[0])];

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		r[i] = slab_alloc(lens[i]);
		ck_assert_uint_ne(r[i], 0);
		fill(slab_ptr(r[i]), lens[i], (unsigned int)i);
	}
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		ck_assert_uint_eq(slab_len(r[i]), lens[i]);
		ck_assert(holds(slab_ptr(r[i]), lens[i], (unsigned int)i));
		r[i] = slab_resize(r[i], lens[i] % 100 + 1);
		ck_assert_uint_ne(r[i], 0);
		ck_assert_uint_eq(slab_len(r[i]), lens[i] % 100 + 1);
		slab_free(r[i]);
	}
}
END_TEST

START_TEST(a_block_of_no_bytes_or_too_many_is_enomem)
{
	errno = 0;
	ck_assert_uint_eq(slab_alloc(0), 0);
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_uint_eq(slab_alloc(SLAB_MAX + 1), 0);
	ck_assert_int_eq(errno, ENOMEM);
}
END_TEST

/* Blocks of every length up to the longest, resized across classes,
 * freed in any order: each keeps its bytes, none overlaps another. */
START_TEST(blocks_keep_their_bytes_through_random_changes)
{
	enum { N = 2000 };
	static slab_ref p[N];
	static size_t len[N];
	unsigned int seed = 99;

	for (int step = 0; step < 40000; step++) {
		unsigned int i, r;

		seed = seed * 1103515245u + 12345u;
		i = (seed >> 8) % N;
		r = (seed >> 20) % 64;
		if (!p[i]) {
			len[i] = 1 + (seed >> 4) % (r == 0 ? SLAB_MAX :
						    r < 8 ? 600 : 80);
			p[i] = slab_alloc(len[i]);
			ck_assert_uint_ne(p[i], 0);
			fill(slab_ptr(p[i]), len[i], i);
		} else if (r < 24) {
			size_t to = 1 + (seed >> 3) % (r == 0 ? SLAB_MAX :
						       r < 8 ? 600 : 80);
			slab_ref q;

			ck_assert_msg(holds(slab_ptr(p[i]), len[i], i),
				      "block %u", i);
			q = slab_resize(p[i], to);
			ck_assert_uint_ne(q, 0);
			ck_assert(holds(slab_ptr(q), len[i] < to ? len[i] : to,
					i));
			p[i] = q;
			len[i] = to;
			fill(slab_ptr(p[i]), len[i], i);
		} else {
			ck_assert_msg(holds(slab_ptr(p[i]), len[i], i),
				      "block %u", i);
			ck_assert_uint_eq(slab_len(p[i]), len[i]);
			slab_free(p[i]);
			p[i] = 0;
		}
	}
	for (unsigned int i = 0; i < N; i++) {
		if (p[i]) {
			ck_assert_msg(holds(slab_ptr(p[i]), len[i], i),
				      "block %u", i);
			slab_free(p[i]);
		}
	}
}
END_TEST

/* Does the mapping holding p carry the huge-page advice ("hg" among its
 * VmFlags, proc(5))? */
static bool advised_huge(const void *p)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool in = false, hg = false;

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
		else if (in && strncmp(line, "VmFlags:", 8) == 0)
			hg = strstr(line, " hg") != NULL;
	}
	fclose(f);
	return hg;
}

/* n blocks of len bytes into p, each filled as fill() makes block i. */
static void alloc_filled(slab_ref *p, unsigned int n, size_t len)
{
	for (unsigned int i = 0; i < n; i++) {
		p[i] = slab_alloc(len);
		ck_assert_uint_ne(p[i], 0);
		fill(slab_ptr(p[i]), len, i);
	}
}

/* Chunks are carved one after another out of one reservation, so blocks
 * of one class follow each other across chunks; past 8 MiB of chunks the
 * reservation carries the huge-page advice, before it not. */
START_TEST(chunks_follow_each_other_and_past_8_mib_may_be_huge)
{
	enum { LEN = 256, N = 40000 };	/* 10 MB */
	static slab_ref p[N];

#ifdef SLAB_UNDER_ASAN
	return;		/* every block is malloc's there */
#endif
	slab_forget_free();
	alloc_filled(p, N, LEN);
	for (unsigned int i = 1; i < N; i++)
		ck_assert_uint_eq(p[i], p[i - 1] + LEN);
	ck_assert_uint_ge(slab_bytes(), (size_t)N * LEN);
	ck_assert(!advised_huge(slab_ptr(1)));
	ck_assert(advised_huge(slab_ptr(p[N - 1])));
	for (unsigned int i = 0; i < N; i++) {
		ck_assert_msg(holds(slab_ptr(p[i]), LEN, i), "block %u", i);
		slab_free(p[i]);
	}
}
END_TEST

/* At rest the pages past the last chunk are given back (a huge page may
 * have backed them); the blocks keep their bytes, and the next ones are
 * carved there as before. */
START_TEST(at_rest_the_pages_past_the_chunks_are_given_back)
{
	enum { LEN = 256, N = 40000 };	/* 10 MB: past the huge pages' 8 */
	static slab_ref p[N];
	unsigned char *next_page, vec;
	slab_ref q;

#ifdef SLAB_UNDER_ASAN
	return;		/* every block is malloc's there */
#endif
	slab_forget_free();
	alloc_filled(p, N, LEN);
	/* The page after the last block's chunk (a page of 16 blocks). */
	next_page = (unsigned char *)(((uintptr_t)slab_ptr(p[N - 1]) +
				       4096) & ~(uintptr_t)4095);
	slab_rest();
	ck_assert_int_eq(mincore(next_page, 4096, &vec), 0);
	ck_assert_msg(!(vec & 1), "the page past the chunks is resident");
	for (unsigned int i = 0; i < N; i++)
		ck_assert_msg(holds(slab_ptr(p[i]), LEN, i), "block %u", i);
	/* A class of its own: a new chunk, at that page. */
	q = slab_alloc(77);
	ck_assert_ptr_eq(slab_ptr(q), next_page);
	fill(slab_ptr(q), 77, 5);
	ck_assert(holds(slab_ptr(q), 77, 5));
	slab_free(q);
	for (unsigned int i = 0; i < N; i++)
		slab_free(p[i]);
}
END_TEST

static Suite *slab_suite(void)
{
	Suite *s = suite_create("slab");
	TCase *t = tcase_create("slab");

	tcase_add_test(t, freed_blocks_are_used_again);
	tcase_add_test(t, a_block_says_how_long_it_is);
	tcase_add_test(t, a_block_of_no_bytes_or_too_many_is_enomem);
	tcase_add_test(t, blocks_keep_their_bytes_through_random_changes);
	tcase_add_test(t, chunks_follow_each_other_and_past_8_mib_may_be_huge);
	tcase_add_test(t, at_rest_the_pages_past_the_chunks_are_given_back);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return unit_main(slab_suite());
}
