/*
 * persist/ internals: the checkpoint, the tdb file that holds the whole
 * state as of the last compaction (schema/schema.h, version 4).
 *
 * It is never changed in place: a checkpoint is written whole into a new
 * file beside it, <database>.next, and renamed over the old one, so a
 * crash leaves the old file or the new one, and a stale .next that the
 * next start removes.  Its '#' records are tdb records of their own; its
 * nodes are packed into zstd-compressed blocks of about CKPT_BLOCK bytes
 * of content, each entry keeping only what its path does not share with
 * the one before, its birth as a distance and its permissions as "the
 * previous entry's" when they are, in columns (schema_block_add).  Nodes
 * of a host's shape take about 3.6 bytes each this way (0.5 MB for
 * 140,000; 4.9 MB for 1.4 million), against 9 in version 3's entries
 * and 200 MB a million as a tdb record a node (version 2).
 */
#ifndef XS_CHECKPOINT_H
#define XS_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>		/* tdb.h wants mode_t */

#include <tdb.h>

/* A block's content is cut once it passes this many bytes. */
#define CKPT_BLOCK (128u << 10)
#define CKPT_NEXT_SUFFIX ".next"
/* zstd's levels for the blocks (checkpoint.c says why): CKPT_LEVEL_SMALL
 * for a small store's checkpoint, one that replaces a file smaller than
 * CKPT_SMALL bytes and is to hold fewer than CKPT_SMALL_NODES nodes (at
 * about 4 bytes a node packed: docs/durability.md), else CKPT_LEVEL. */
#define CKPT_LEVEL 6
#define CKPT_LEVEL_SMALL 1
#define CKPT_SMALL (64u << 10)
#define CKPT_SMALL_NODES (CKPT_SMALL / 4)

struct ckpt_writer;

/* The calling thread keeps zstd's contexts from one checkpoint to the
 * next (on), or frees them and stops (off). */
void ckpt_keep_contexts(bool on);

/*
 * Start a checkpoint for the database at path, in path.next (replacing
 * any left there).  replaces: the size in bytes of the file it is to
 * replace (0: none); nodes: about how many nodes it is to hold, as far
 * as the caller can tell (a merge: its journal's changes; a copy of the
 * store: its nodes).  Together they set how hard its blocks are packed
 * (a small store's, merged often, cheaply: checkpoint.c).  NULL
 * with why filled when it cannot be made.  why (why_len bytes) is where
 * every later failure of the writer is told.
 */
struct ckpt_writer *ckpt_create(const char *path, uint64_t replaces,
				uint64_t nodes, char *why, size_t why_len);
/* "#format", "#nodes" and the blocks' keys: the writer's own, which it
 * writes itself (a merge leaves out any a journal holds). */
bool ckpt_key_is_own(const void *key, size_t klen);
/*
 * Add a record: a node's (key a path, val its node record) to the
 * blocks, a '#' one to the file.  Each key once; "#format" and the
 * blocks' keys are the writer's own and are refused.  0, or -1 with why.
 */
int ckpt_add(struct ckpt_writer *w, const void *key, size_t klen,
	     const void *val, size_t vlen);
/*
 * Add a block as it was stored in another checkpoint (packed, len bytes,
 * holding nodes nodes), under the next block number, after the nodes
 * added before it (their block is cut short): its nodes are not
 * unpacked.  0, or -1 with why.
 */
int ckpt_add_block(struct ckpt_writer *w, const void *packed, size_t len,
		   uint64_t nodes);
/*
 * Write what is left and the "#nodes" and "#format" records, close the
 * file and rename it over path: 0, or -1 with why (the new file removed,
 * the old one untouched).  w is freed either way.
 */
int ckpt_commit(struct ckpt_writer *w);
/* Give up: the new file is removed, w freed. */
void ckpt_abandon(struct ckpt_writer *w);

/* A record of a checkpoint: 0 to go on, anything else stops the read
 * and is its result.  key and val are valid during the call only. */
typedef int ckpt_record_fn(const void *key, size_t klen, const void *val,
			   size_t vlen, void *arg);

/*
 * Every record of the checkpoint open at tdb, whose "#format" says
 * version, to fn, but "#format": the '#' records, then from version 3
 * the nodes out of their blocks, block by block in the order they were
 * written (before version 3, nodes and '#' records in no particular
 * order).  It reads the file with tdb_check, which proves the file whole
 * too.  0; fn's nonzero
 * result; or -1 with why filled when the file is damaged (a missing or
 * repeated block, a block or entry malformed, counts that disagree, a
 * node record outside the blocks from version 3) or memory ran out.
 */
int ckpt_read(struct tdb_context *tdb, uint32_t version, ckpt_record_fn *fn,
	      void *arg, char *why, size_t why_len);

/*
 * More say over the blocks (ckpt_read_merging), each member optional.
 * A merge's view: a block none of whose paths is touched goes to whole
 * as it is stored, with its number of nodes (0 to go on, else a
 * failure), instead of node by node to fn; so a merge copies the blocks
 * a journal left alone without packing them again.  A load's: counted
 * is told how many nodes the blocks hold before they are read (0 to go
 * on, else the read's result), to make room for them.
 */
struct ckpt_block_ops {
	bool (*touched)(const void *path, size_t len, void *arg);
	int (*whole)(const void *packed, size_t len, uint64_t nodes,
		     void *arg);
	int (*counted)(uint64_t nodes, void *arg);
};

/* ckpt_read, with ops (or NULL: the same as ckpt_read). */
int ckpt_read_merging(struct tdb_context *tdb, uint32_t version,
		      ckpt_record_fn *fn, const struct ckpt_block_ops *ops,
		      void *arg, char *why, size_t why_len);

/*
 * One block's bytes (a "#nodes/<i>" record of a file of version, 3 or
 * later), each node to fn, *count set to how many there were: 0; fn's
 * nonzero result (*why NULL); or -1 with *why saying what is malformed.
 * For ckpt_read and the fuzz target.
 */
int ckpt_read_block(uint32_t version, const void *p, size_t len,
		    ckpt_record_fn *fn, void *arg, uint64_t *count,
		    const char **why);

#endif
