/*
 * fuzz-checkpoint: the reader of the checkpoint's node blocks
 * (persist/checkpoint.c ckpt_read_block, and schema/'s block entries)
 * against untrusted bytes: a database file someone else wrote, or a disk
 * damaged (libFuzzer target).  The tdb container around the blocks is
 * libtdb's, checked by tdb_check; what is ours is the block.
 *
 * Input: one byte that picks how the rest is read (its value modulo 4):
 *   0  the bytes are a block's record as stored: a zstd frame;
 *   1  they are a block's content, which the target compresses into a
 *      frame as the daemon does, so that the entries' decoder is reached
 *      without the fuzzer having to make zstd's checksum;
 *   2, 3  the same, of a version-3 file (the entries' older encoding).
 * The bytes are copied to an allocation of exactly their length, so ASan
 * sees any read past them.  Every node handed over has a node's key of
 * 1 .. SCHEMA_JOURNAL_KEY_MAX bytes without a NUL; a node record it
 * carries is decoded as a load would (schema_decode_node), and one that
 * decodes encodes back to the same bytes.  A version-3 block accepted
 * in mode 3 has exactly the entries the target counted by walking its
 * content; a version-4 block accepted whose records all decode is
 * written again by the writer (schema_block_add), and that block reads
 * back the same paths and records.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <zstd.h>

#include "persist/checkpoint.h"
#include "record/record.h"
#include "schema/schema.h"
#include "tests/fuzz/fuzz.h"

const char fuzz_target[] = "fuzz-checkpoint";

static ZSTD_CCtx *cctx;
static struct evbuffer *again;
/* What a version-4 block handed over, and the same written again. */
static struct evbuffer *seen;
static struct schema_block rewritten;
static bool all_decoded;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	cctx = ZSTD_createCCtx();
	again = evbuffer_new();
	seen = evbuffer_new();
	CHECK(cctx && again && seen, "out of memory");
	CHECK(!ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag,
						   1)), "zstd's checksum");
	return 0;
}

static int on_node(const void *key, size_t klen, const void *val,
		   size_t vlen, void *arg)
{
	struct schema_node n;
	struct writer w;
	size_t *count = arg;

	CHECK(klen >= 1 && klen <= SCHEMA_JOURNAL_KEY_MAX,
	      "a path of %zu bytes accepted", klen);
	CHECK(schema_key_is_node(key, klen), "a '#' key taken for a node");
	CHECK(!memchr(key, '\0', klen), "a path with a NUL accepted");
	if (schema_decode_node(key, klen, val, vlen, &n)) {
		struct perm *perms = malloc(n.nperms * sizeof(*perms));

		CHECK(perms, "out of memory");
		for (uint32_t i = 0; i < n.nperms; i++)
			perms[i] = schema_node_perm(&n, i);
		n.perms = perms;
		evbuffer_drain(again, evbuffer_get_length(again));
		wr_init(&w, again);
		schema_write_node(&w, &n);
		CHECK(wr_ok(&w), "out of memory");
		CHECK(evbuffer_get_length(again) == vlen &&
		      !memcmp(evbuffer_pullup(again, -1), val, vlen),
		      "a node record with two encodings");
		CHECK(schema_block_add(&rewritten, key, klen, &n),
		      "out of memory");
		free(perms);
	} else {
		all_decoded = false;
	}
	wr_init(&w, seen);
	wr_bytes(&w, key, klen);
	wr_bytes(&w, val, vlen);
	CHECK(wr_ok(&w), "out of memory");
	++*count;
	return 0;
}

/* The block written again from what was read reads back the same. */
static void reads_back_the_same(void)
{
	struct schema_block_reader br = { 0 };
	const void *content, *rec;
	size_t len, rec_len;
	struct reader r;
	int got;

	CHECK(schema_block_finish(&rewritten, &content, &len), "out of memory");
	CHECK(schema_block_open(&br, content, len), "a written block refused");
	rd_init(&r, evbuffer_pullup(seen, -1), evbuffer_get_length(seen));
	while ((got = schema_block_next(&br, &rec, &rec_len)) == 1) {
		uint32_t klen, vlen;
		const void *key = rd_bytes(&r, &klen), *val = rd_bytes(&r, &vlen);

		CHECK(rd_ok(&r), "more entries written than read");
		CHECK(klen == br.path_len && !memcmp(key, br.path, klen),
		      "a path read back otherwise");
		CHECK(vlen == rec_len && !memcmp(val, rec, vlen),
		      "a record read back otherwise");
	}
	CHECK(got == 0 && r.left == 0, "a written block read back short (%d)",
	      got);
	schema_block_reader_free(&br);
}

/* The entries a version-3 content holds by its own lengths, or -1 when
 * they do not cover it exactly (then the reader must refuse the block). */
static long walk(const unsigned char *p, size_t len)
{
	struct reader r;
	long n = 0;

	rd_init(&r, p, len);
	while (r.left) {
		uint32_t l;

		(void)rd_u32(&r);
		(void)rd_bytes(&r, &l);
		(void)rd_bytes(&r, &l);
		if (!rd_ok(&r))
			return -1;
		n++;
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *p, *frame = NULL;
	size_t len, count = 0;
	uint64_t told = 0;
	const char *why = NULL;
	uint32_t version;
	int rc;

	if (size < 1)
		return 0;
	version = data[0] % 4 < 2 ? SCHEMA_DB_VERSION : 3;
	p = after_mode_byte(data, size, &len);
	evbuffer_drain(seen, evbuffer_get_length(seen));
	all_decoded = true;
	if (data[0] % 2 == 0) {
		rc = ckpt_read_block(version, p, len, on_node, &count, &told,
				     &why);
	} else {
		size_t bound = ZSTD_compressBound(len), flen;

		frame = malloc(bound);
		CHECK(frame, "out of memory");
		flen = ZSTD_compress2(cctx, frame, bound, p, len);
		CHECK(!ZSTD_isError(flen), "compressing: %s",
		      ZSTD_getErrorName(flen));
		rc = ckpt_read_block(version, frame, flen, on_node, &count,
				     &told, &why);
		if (rc == 0 && version == 3)
			CHECK(walk(p, len) == (long)count,
			      "%zu entries read from a content of %ld", count,
			      walk(p, len));
	}
	CHECK(rc == 0 || rc == -1, "result %d", rc);
	CHECK(rc == 0 || why, "refused without a reason");
	CHECK(rc != 0 || (count > 0 && told == count),
	      "%zu nodes handed over, %llu counted", count,
	      (unsigned long long)told);
	if (rc == 0 && version == SCHEMA_DB_VERSION && all_decoded)
		reads_back_the_same();
	schema_block_free(&rewritten);
	free(frame);
	free(p);
	return 0;
}
