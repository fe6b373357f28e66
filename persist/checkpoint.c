/*
 * The checkpoint file (checkpoint.h): written whole beside the old one
 * and renamed over it; read back through tdb_check.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zstd.h>

#include "persist/checkpoint.h"
#include "persist/crash.h"
#include "persist/tdb_space.h"
#include "record/record.h"
#include "schema/schema.h"

/*
 * The levels (checkpoint.h).  CKPT_LEVEL, zstd's level 6: the file is
 * RAM on a tmpfs, and counts in the daemon's memory (issue 20's budget).
 * With version 3's entries, level 1 shrank a host's nodes (paths and
 * values that repeat from domain to domain) about fivefold and level 5 a
 * fifth less again (1.3 MB instead of 1.6 with 100,000 keys).  A merge
 * compresses only the blocks a journal changed (compact.c), on its own
 * thread, and pipelined WRITEs, which keep it busy, did not move
 * (bench/ab, 15 rounds).  Version 4's columns halved the file at level 5
 * for less CPU; level 6 takes a fifth off again (a million keys: 4.9 MB
 * instead of 6.0) for about the CPU of level 5's columns, still less
 * than version 3's entries took.
 *
 * But CKPT_LEVEL_SMALL, level 1, for a checkpoint that replaces a file
 * under CKPT_SMALL bytes and is to hold fewer nodes than would fill that
 * (a first merge after a fill may hold many): a store of a few thousand
 * nodes, whose file is a few tens of KB at any level, is merged most
 * often for its size (its journal's limit is the same 16 MiB as a store
 * of 100,000 nodes'), and level 6 was a third of each merge's
 * instructions (callgrind, 1,000 nodes under pipelined WRITEs).  Level 6
 * packs such small blocks no smaller anyway (a few percent either way,
 * with the content).  Blocks packed while the store was small stay so
 * until a merge touches them: at most CKPT_SMALL's worth.
 */
/* Hash chains of the new file: it holds the '#' records (three a guest)
 * and one a block. */
#define CKPT_HASH_SIZE 1021

struct ckpt_writer {
	struct tdb_context *tdb;
	char *path, *next;
	char *why;
	size_t why_len;
	ZSTD_CCtx *cctx;
	struct schema_block block;	/* the block being filled */
	unsigned char *packed;
	size_t packed_cap;
	uint32_t blocks;
	uint64_t nodes;
};

/*
 * zstd's contexts, kept between checkpoints by a thread that asks
 * (ckpt_keep_contexts): their tables, a few hundred KB, are otherwise
 * mapped, faulted in and unmapped again for every checkpoint, which was
 * much of a compaction's cost while a small store takes many writes.
 */
static __thread bool keep_contexts;
static __thread ZSTD_CCtx *kept_cctx;
static __thread ZSTD_DCtx *kept_dctx;

void ckpt_keep_contexts(bool on)
{
	keep_contexts = on;
	if (on)
		return;
	ZSTD_freeCCtx(kept_cctx);
	ZSTD_freeDCtx(kept_dctx);
	kept_cctx = NULL;
	kept_dctx = NULL;
}

static ZSTD_CCtx *take_cctx(void)
{
	ZSTD_CCtx *c = kept_cctx;

	kept_cctx = NULL;
	if (!c)
		return ZSTD_createCCtx();
	ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
	return c;
}

static void give_cctx(ZSTD_CCtx *c)
{
	if (keep_contexts && !kept_cctx)
		kept_cctx = c;
	else
		ZSTD_freeCCtx(c);
}

static ZSTD_DCtx *take_dctx(void)
{
	ZSTD_DCtx *d = kept_dctx;

	kept_dctx = NULL;
	if (!d)
		return ZSTD_createDCtx();
	ZSTD_DCtx_reset(d, ZSTD_reset_session_and_parameters);
	return d;
}

static void give_dctx(ZSTD_DCtx *d)
{
	if (keep_contexts && !kept_dctx)
		kept_dctx = d;
	else
		ZSTD_freeDCtx(d);
}

static int fail(struct ckpt_writer *w, const char *what, const char *detail)
{
	snprintf(w->why, w->why_len, "%s %s: %s", what, w->next, detail);
	return -1;
}

static int store(struct ckpt_writer *w, const char *what, const void *key,
		 size_t klen, const void *val, size_t vlen)
{
	TDB_DATA k = { (unsigned char *)key, klen };
	TDB_DATA v = { (unsigned char *)val, vlen };

	if (tdb_store(w->tdb, k, v, TDB_INSERT) == 0)
		return 0;
	return fail(w, what, tdb_errorstr(w->tdb));
}

static void writer_free(struct ckpt_writer *w)
{
	if (w->tdb)
		tdb_close(w->tdb);
	if (w->cctx)
		give_cctx(w->cctx);
	schema_block_free(&w->block);
	free(w->packed);
	free(w->path);
	free(w->next);
	free(w);
}

struct ckpt_writer *ckpt_create(const char *path, uint64_t replaces,
				uint64_t nodes, char *why, size_t why_len)
{
	int level = replaces < CKPT_SMALL && nodes < CKPT_SMALL_NODES
			    ? CKPT_LEVEL_SMALL : CKPT_LEVEL;
	struct ckpt_writer *w = calloc(1, sizeof(*w));
	size_t n = strlen(path);

	if (!w || !(w->path = strdup(path)) ||
	    !(w->next = malloc(n + sizeof(CKPT_NEXT_SUFFIX))) ||
	    !(w->cctx = take_cctx()) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx,
						ZSTD_c_compressionLevel,
						level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag,
						1))) {
		snprintf(why, why_len, "starting a checkpoint of %s: out of "
			 "memory", path);
		if (w)
			writer_free(w);
		return NULL;
	}
	memcpy(w->next, path, n);
	memcpy(w->next + n, CKPT_NEXT_SUFFIX, sizeof(CKPT_NEXT_SUFFIX));
	w->why = why;
	w->why_len = why_len;
	/* O_TRUNC alone would keep a stale file's inode, which a reader
	 * may still map; a new one is cleaner. */
	if (unlink(w->next) != 0 && errno != ENOENT) {
		fail(w, "removing", strerror(errno));
		writer_free(w);
		return NULL;
	}
	errno = 0;
	w->tdb = tdb_open(w->next, CKPT_HASH_SIZE, TDB_NOLOCK | TDB_NOSYNC |
			  TDB_INCOMPATIBLE_HASH,
			  O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (!w->tdb) {
		fail(w, "creating", errno ? strerror(errno) : "tdb_open failed");
		writer_free(w);
		return NULL;
	}
	return w;
}

/* packed (a block's stored bytes) as the next "#nodes/<i>" record. */
static int store_block(struct ckpt_writer *w, const void *packed, size_t len)
{
	char key[SCHEMA_KEY_MAX];

	schema_key_block(key, w->blocks);
	if (store(w, "writing", key, strlen(key), packed, len) != 0)
		return -1;
	CRASH_POINT("checkpoint-block");
	w->blocks++;
	return 0;
}

/* The block so far, compressed, as the next "#nodes/<i>" record. */
static int flush_block(struct ckpt_writer *w)
{
	const void *content;
	size_t bound, len, used;

	if (!w->block.entries)
		return 0;
	if (!schema_block_finish(&w->block, &content, &used))
		return fail(w, "writing", "out of memory");
	bound = ZSTD_compressBound(used);
	if (w->packed_cap < bound) {
		unsigned char *p = realloc(w->packed, bound);

		if (!p)
			return fail(w, "writing", "out of memory");
		w->packed = p;
		w->packed_cap = bound;
	}
	len = ZSTD_compress2(w->cctx, w->packed, w->packed_cap, content,
			     used);
	if (ZSTD_isError(len))
		return fail(w, "compressing a block of", ZSTD_getErrorName(len));
	return store_block(w, w->packed, len);
}

int ckpt_add_block(struct ckpt_writer *w, const void *packed, size_t len,
		   uint64_t nodes)
{
	/* The nodes added before it go first, so that the file keeps the
	 * order they came in: parents before their children, which a load
	 * puts in at once (load.c).  Left behind the block, a merge that
	 * touched one early block moved it after every later one, and a
	 * restart of a store filled by many merges put most of its nodes
	 * aside, then sorted them (a third of the load). */
	if (flush_block(w) != 0 || store_block(w, packed, len) != 0)
		return -1;
	w->nodes += nodes;
	return 0;
}

/* A node record longer than this is refused: with a full block's
 * CKPT_BLOCK before it, its entry still fits in SCHEMA_BLOCK_MAX (a
 * node's record is a few KB: a value of XENSTORE_PAYLOAD_MAX at most). */
#define NODE_RECORD_MAX (SCHEMA_BLOCK_MAX / 4)

static int add_node(struct ckpt_writer *w, const char *path, size_t plen,
		    const void *val, size_t vlen)
{
	struct schema_node n;

	if (plen > SCHEMA_JOURNAL_KEY_MAX || vlen > NODE_RECORD_MAX)
		return fail(w, "writing", "a node record too long");
	if (!schema_decode_node(path, plen, val, vlen, &n))
		return fail(w, "writing", "a malformed node record");
	if (schema_block_len(&w->block) + plen + vlen > CKPT_BLOCK &&
	    flush_block(w) != 0)
		return -1;
	if (!schema_block_add(&w->block, path, plen, &n))
		return fail(w, "writing", "out of memory");
	w->nodes++;
	return 0;
}

static bool same_key(const void *key, size_t klen, const char *s)
{
	return klen == strlen(s) && !memcmp(key, s, klen);
}

bool ckpt_key_is_own(const void *key, size_t klen)
{
	const size_t plen = strlen(SCHEMA_PREFIX_BLOCK);

	return same_key(key, klen, SCHEMA_KEY_FORMAT) ||
	       same_key(key, klen, SCHEMA_KEY_NODES) ||
	       (klen >= plen && !memcmp(key, SCHEMA_PREFIX_BLOCK, plen));
}

int ckpt_add(struct ckpt_writer *w, const void *key, size_t klen,
	     const void *val, size_t vlen)
{
	if (!klen)
		return fail(w, "writing", "an empty key");
	if (schema_key_is_node(key, klen))
		return add_node(w, key, klen, val, vlen);
	if (ckpt_key_is_own(key, klen))
		return fail(w, "writing", "a record of the checkpoint's own");
	return store(w, "writing", key, klen, val, vlen);
}

/* A record of what enc writes, stored under key. */
static int store_encoded(struct ckpt_writer *w, const char *key,
			 void (*enc)(struct ckpt_writer *w, struct writer *wr))
{
	struct evbuffer *b = evbuffer_new();
	struct writer wr;
	unsigned char *p;
	int rc = -1;

	if (b) {
		wr_init(&wr, b);
		enc(w, &wr);
		p = wr_ok(&wr) ? evbuffer_pullup(b, -1) : NULL;
		if (p)
			rc = store(w, "writing", key, strlen(key), p,
				   evbuffer_get_length(b));
		else
			fail(w, "writing", "out of memory");
		evbuffer_free(b);
	} else {
		fail(w, "writing", "out of memory");
	}
	return rc;
}

static void enc_nodes(struct ckpt_writer *w, struct writer *wr)
{
	schema_write_nodes_head(wr, w->blocks, w->nodes);
}

static void enc_format(struct ckpt_writer *w, struct writer *wr)
{
	(void)w;
	schema_write_format(wr);
}

int ckpt_commit(struct ckpt_writer *w)
{
	int rc = -1;

	if (flush_block(w) != 0 ||
	    store_encoded(w, SCHEMA_KEY_NODES, enc_nodes) != 0 ||
	    store_encoded(w, SCHEMA_KEY_FORMAT, enc_format) != 0)
		goto out;
	rc = tdb_close(w->tdb);
	w->tdb = NULL;
	if (rc != 0) {
		fail(w, "closing", strerror(errno));
		goto out;
	}
	/* Never written again: its free space need not be RAM. */
	tdb_release_free_space(w->next);
	CRASH_POINT("checkpoint-written");
	if (rename(w->next, w->path) != 0) {
		rc = fail(w, "renaming", strerror(errno));
		goto out;
	}
	CRASH_POINT("checkpoint-renamed");
out:
	if (rc != 0)
		unlink(w->next);
	writer_free(w);
	return rc;
}

void ckpt_abandon(struct ckpt_writer *w)
{
	if (!w)
		return;
	unlink(w->next);
	writer_free(w);
}

/* ---- reading ---- */

struct block_reader {
	uint32_t version;		/* the file's */
	ZSTD_DCtx *dctx;
	unsigned char *plain;
	size_t plain_cap;
	struct schema_block_reader entries;	/* version 4's */
	char path[SCHEMA_JOURNAL_KEY_MAX];	/* version 3's */
};

/* The frame's header says it ends with its content's checksum (RFC 8878:
 * bit 2 of the descriptor after the magic); zstd checks it when told. */
static bool has_checksum(const unsigned char *p, size_t len)
{
	return len > 4 && (p[4] & 0x04);
}

#define MALFORMED "a malformed entry in a node block"

/* Version 3's entries (schema_read_v3_entry), as each_entry's. */
static int each_v3_entry(struct block_reader *br, size_t size,
			 ckpt_record_fn *fn, void *arg, uint64_t *count,
			 const char **why)
{
	struct reader r;
	size_t path_len = 0;

	rd_init(&r, br->plain, size);
	while (r.left) {
		const void *node;
		uint32_t node_len;
		int rc;

		if (!schema_read_v3_entry(&r, br->path, &path_len, &node,
					  &node_len)) {
			*why = MALFORMED;
			return -1;
		}
		if ((rc = fn(br->path, path_len, node, node_len, arg)) != 0)
			return rc;
		++*count;
	}
	return 0;
}

/*
 * Each entry of the size bytes decompressed in br to fn, *count of them:
 * 0, fn's nonzero result (*why NULL), or -1 with *why when an entry is
 * malformed or memory runs out.
 */
static int each_entry(struct block_reader *br, size_t size,
		      ckpt_record_fn *fn, void *arg, uint64_t *count,
		      const char **why)
{
	struct schema_block_reader *e = &br->entries;
	const void *node;
	size_t node_len;
	int got, rc;

	*count = 0;
	if (br->version < SCHEMA_DB_VERSION_COLUMNS)
		return each_v3_entry(br, size, fn, arg, count, why);
	if (!schema_block_open(e, br->plain, size)) {
		*why = "a node block whose parts' lengths do not add up";
		return -1;
	}
	while ((got = schema_block_next(e, &node, &node_len)) == 1) {
		if ((rc = fn(e->path, e->path_len, node, node_len, arg)) != 0)
			return rc;
		++*count;
	}
	if (got == 0)
		return 0;
	*why = got == -2 ? "out of memory" : MALFORMED;
	return -1;
}

/* each_entry's fn for a merge's first look at a block: stops at the
 * first path the merge touches. */
struct first_touch {
	const struct ckpt_block_ops *ops;
	void *arg;
};

#define TOUCHED 1

static int first_touch(const void *path, size_t len, const void *node,
		       size_t node_len, void *arg)
{
	const struct first_touch *ft = arg;

	(void)node;
	(void)node_len;
	return ft->ops->touched(path, len, ft->arg) ? TOUCHED : 0;
}

static int read_block(struct block_reader *br, const void *p, size_t len,
		      ckpt_record_fn *fn, const struct ckpt_block_ops *ops,
		      void *arg, uint64_t *count, const char **why)
{
	unsigned long long size = ZSTD_getFrameContentSize(p, len);
	size_t got;

	*count = 0;
	*why = NULL;
	if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN ||
	    !has_checksum(p, len) ||
	    ZSTD_findFrameCompressedSize(p, len) != len) {
		*why = "a node block that is not one whole zstd frame with its "
		       "size and checksum";
		return -1;
	}
	if (size == 0 || size > SCHEMA_BLOCK_MAX) {
		*why = "a node block of a size out of bounds";
		return -1;
	}
	if (!br->dctx && !(br->dctx = take_dctx())) {
		*why = "out of memory";
		return -1;
	}
	if (br->plain_cap < size) {
		unsigned char *b = realloc(br->plain, size);

		if (!b) {
			*why = "out of memory";
			return -1;
		}
		br->plain = b;
		br->plain_cap = size;
	}
	got = ZSTD_decompressDCtx(br->dctx, br->plain, size, p, len);
	if (ZSTD_isError(got) || got != size) {
		*why = "a node block that does not decompress (damaged)";
		return -1;
	}
	if (ops && ops->touched) {
		/* A first look, up to the first path touched: none, and the
		 * block goes whole; else node by node, below. */
		struct first_touch ft = { ops, arg };
		int rc = each_entry(br, size, first_touch, &ft, count, why);

		if (rc == 0)
			return ops->whole(p, len, *count, arg);
		if (rc != TOUCHED)
			return rc;
	}
	return each_entry(br, size, fn, arg, count, why);
}

static void block_reader_free(struct block_reader *br)
{
	if (br->dctx)
		give_dctx(br->dctx);
	free(br->plain);
	schema_block_reader_free(&br->entries);
}

int ckpt_read_block(uint32_t version, const void *p, size_t len,
		    ckpt_record_fn *fn, void *arg, uint64_t *count,
		    const char **why)
{
	struct block_reader br = { .version = version };
	int rc = read_block(&br, p, len, fn, NULL, arg, count, why);

	block_reader_free(&br);
	return rc;
}

struct read_state {
	uint32_t version;
	ckpt_record_fn *fn;
	const struct ckpt_block_ops *ops;
	void *arg;
	struct block_reader br;
	bool *seen;			/* blocks seen, by number */
	size_t seen_cap;
	uint32_t blocks_seen;
	uint64_t nodes_seen;
	bool head;			/* the "#nodes" record was there */
	uint32_t blocks;
	uint64_t nodes;
	int rc;				/* fn's, when it stopped the read */
	const char *bad;
};

/* Block i was there: false when it was already. */
static bool mark_block(struct read_state *st, uint32_t i)
{
	if (i >= st->seen_cap) {
		size_t cap = st->seen_cap ? st->seen_cap : 64;
		bool *v;

		while (cap <= i)
			cap *= 2;
		if (!(v = realloc(st->seen, cap * sizeof(*v)))) {
			st->bad = "out of memory";
			return false;
		}
		memset(v + st->seen_cap, 0, (cap - st->seen_cap) * sizeof(*v));
		st->seen = v;
		st->seen_cap = cap;
	}
	if (st->seen[i]) {
		st->bad = "a node block stored twice";
		return false;
	}
	st->seen[i] = true;
	st->blocks_seen++;
	return true;
}

static int read_record(TDB_DATA key, TDB_DATA data, void *arg)
{
	struct read_state *st = arg;
	uint32_t i;
	int rc;

	if (same_key(key.dptr, key.dsize, SCHEMA_KEY_FORMAT))
		return 0;
	if (st->version >= SCHEMA_DB_VERSION_BLOCKS) {
		if (same_key(key.dptr, key.dsize, SCHEMA_KEY_NODES)) {
			st->head = true;
			if (schema_decode_nodes_head(data.dptr, data.dsize,
						     &st->blocks, &st->nodes))
				return 0;
			st->bad = "a malformed \"#nodes\" record";
			return -1;
		}
		if (schema_key_is_block(key.dptr, key.dsize, &i))
			return mark_block(st, i) ? 0 : -1;	/* read after */
		if (schema_key_is_node(key.dptr, key.dsize)) {
			st->bad = "a node record outside the node blocks";
			return -1;
		}
		if (ckpt_key_is_own(key.dptr, key.dsize)) {
			st->bad = "a node block's key misspelt";
			return -1;
		}
	} else if (ckpt_key_is_own(key.dptr, key.dsize)) {
		return 0;	/* meant nothing before version 3 */
	}
	if ((rc = st->fn(key.dptr, key.dsize, data.dptr, data.dsize,
			 st->arg)) != 0) {
		st->rc = rc;
		return -1;
	}
	return 0;
}

/*
 * The blocks, by number: the order they were written in, so a node comes
 * after its parent as in the tree it was written from (tdb's traversal
 * would hand them over in the order of its hash chains).
 */
static int read_blocks(struct tdb_context *tdb, struct read_state *st)
{
	char key[SCHEMA_KEY_MAX];

	for (uint32_t i = 0; i < st->blocks; i++) {
		TDB_DATA data;
		uint64_t count;
		int rc;

		schema_key_block(key, i);
		data = tdb_fetch(tdb, (TDB_DATA){ (unsigned char *)key,
						  strlen(key) });
		if (!data.dptr) {
			st->bad = "a node block that cannot be read again";
			return -1;
		}
		rc = read_block(&st->br, data.dptr, data.dsize, st->fn,
				st->ops, st->arg, &count, &st->bad);
		free(data.dptr);
		st->nodes_seen += count;
		if (rc != 0) {
			if (!st->bad)
				st->rc = rc;
			return -1;
		}
	}
	return 0;
}

/* Blocks 0 to st->blocks - 1 were there, and no other. */
static bool blocks_whole(const struct read_state *st)
{
	if (st->blocks_seen != st->blocks)
		return false;
	for (uint32_t i = 0; i < st->blocks; i++)
		if (i >= st->seen_cap || !st->seen[i])
			return false;
	return true;
}

int ckpt_read(struct tdb_context *tdb, uint32_t version, ckpt_record_fn *fn,
	      void *arg, char *why, size_t why_len)
{
	return ckpt_read_merging(tdb, version, fn, NULL, arg, why, why_len);
}

int ckpt_read_merging(struct tdb_context *tdb, uint32_t version,
		      ckpt_record_fn *fn, const struct ckpt_block_ops *ops,
		      void *arg, char *why, size_t why_len)
{
	struct read_state st = { .version = version, .fn = fn, .ops = ops,
				 .arg = arg, .br = { .version = version } };
	int rc = tdb_check(tdb, read_record, &st);

	if (st.rc)
		rc = st.rc;
	else if (rc != 0 && !st.bad)
		st.bad = "tdb's check of the file failed (truncated or damaged)";
	else if (version >= SCHEMA_DB_VERSION_BLOCKS && !st.bad) {
		if (!st.head)
			st.bad = "no \"#nodes\" record";
		else if (!blocks_whole(&st))
			st.bad = "node blocks missing, or past their count";
		else if (ops && ops->counted &&
			 (rc = ops->counted(st.nodes, arg)) != 0)
			;
		else if (read_blocks(tdb, &st) != 0)
			rc = st.rc ? st.rc : -1;
		else if (st.nodes_seen != st.nodes)
			st.bad = "fewer or more nodes than \"#nodes\" counts";
	}
	if (st.bad) {
		snprintf(why, why_len, "%s", st.bad);
		rc = -1;
	}
	block_reader_free(&st.br);
	free(st.seen);
	return rc;
}
