/*
 * schema: every record the daemon persists, its key, layout and version,
 * in one place.  The tdb file (persist/) and the live-update image
 * (daemon/liveupdate.c) are made of these records.  Their owners turn
 * live objects into the plain structs below and back; none of them spells
 * a key or a byte layout.  A restart and a live update read the same
 * records the same way: the image holds only what the database does not.
 *
 * Owners hold the writer or reader a stream goes through (record/'s
 * wr_init and wr_ok, rd_init and rd_done), never a field of it.
 *
 * Encoding (record/): u8, u32 and u64 little-endian; "bytes" is a u32
 * length and the bytes; "str" is bytes ending in their only NUL.  A
 * decoder refuses a record that is short, has bytes left over, or holds a
 * value its field cannot have (the file is untrusted input), and never
 * reads past its end.  What depends on live state (a domid Xen may use,
 * a feature this daemon offers, a quota name it knows) its owner checks.
 *
 * The database, SCHEMA_DB_VERSION 4: a tdb file, the checkpoint, holding
 * the '#' records one a key, and the nodes packed into blocks:
 *
 *   "#format"          str "xenstored-db", u32 version
 *   "#nodes"           u32 blocks, u64 nodes (in all the blocks)
 *   "#nodes/<i>"       block i (decimal, from 0 to blocks - 1, no leading
 *                      zero): a zstd frame with its content size and
 *                      checksum, whose content (1 .. SCHEMA_BLOCK_MAX
 *                      bytes) is its node entries in three columns,
 *                        var heads      the heads' bytes (at least 1)
 *                        var names      the names' bytes
 *                        heads          each entry's, in order:
 *                          var shared   bytes of the previous entry's
 *                                       path (in this block) it starts
 *                                       with
 *                          var rest     bytes of the path after them
 *                                       (at least 1), from the names
 *                          var born     its birth less the previous
 *                                       entry's (the first's: less 0),
 *                                       modulo 2^64, zigzag-signed (0,
 *                                       -1, 1, -2 ... as 0, 1, 2, 3 ...)
 *                          var n        its permissions: 0, the previous
 *                                       entry's (never in the first);
 *                                       else n x (var domid, u8 access)
 *                          var value    bytes of its value, from the
 *                                       values
 *                        names          the rests, back to back
 *                        values         the values, back to back
 *                      ("var": LEB128, 7 bits a byte, low first, in as
 *                      few bytes as it takes.)  Every byte of each column
 *                      belongs to an entry.  Read, an entry is its path
 *                      and a node record (below), as a journal's put.
 *                      The blocks' order says nothing: a load orders the
 *                      nodes by birth.  Each path is in one entry only.
 *   node record        u64 born (its creation generation, > 0; in a
 *                      journal of version 2, 0 means "as before": the
 *                      put changes a node that exists, and its birth is
 *                      the one its last put with a birth gave, in the
 *                      journals or the checkpoint),
 *                      u32 n (>= 1), n x (u32 domid (< STORE_DOMIDS),
 *                      u32 access (PERM_READ | PERM_WRITE | PERM_IGNORE)),
 *                      bytes value (at most XENSTORE_PAYLOAD_MAX)
 *   "#domain/<domid>"  u32 domid, u64 gfn, u32 event channel port,
 *                      u32 features, u32 target (DOMID_NONE: none),
 *                      u8 introduced, u8 shutdown reported (0 or 1 each)
 *   "#input/<domid>"   u32 ring index after the bytes, bytes the start of
 *                      a request that left the ring (1 .. a header and a
 *                      full payload, less one)
 *   "#watches/<domid>" a watch list (a guest connection's)
 *   "#rewrite"         u64 mark (not 0): the file was written whole from
 *                      memory (persist/db.c's rewrite); a journal whose
 *                      "#superseded" holds the same mark is older than
 *                      it and is not replayed
 *   "#quotas"          u32 soft memory limit, u32 n, n x (u32 domid
 *                      (SCHEMA_QUOTA_GLOBAL: the global limit), str name,
 *                      u32 value): only the overrides a domain has
 *
 *   watch list         u32 n, n x (str path, str token, u32 strip (<= the
 *                      path's length), u32 depth (as int32, >= -1), u8 an
 *                      event held back (0 or 1))
 *
 * Version 3's block content was its entries whole, each u32 shared,
 * bytes rest, bytes node record: zstd packed it to twice version 4's
 * size.  Version 3 is read, and the first compaction writes version 4.
 *
 * Versions 1 and 2 kept each node as a tdb record of its own, keyed by
 * its path ("/path", "@name"), its value the node record: a million nodes
 * took 200 MB, and libtdb's stores made compaction slow (persist/).  They
 * are read, and the first compaction writes version 3.
 *
 * Version 1 kept the quotas by position (u32 kinds (9), the 9 global
 * limits, the soft limit, u32 n, n x (u32 domid, u32 bit mask of the
 * kinds set, the 9 values)), in the order of SCHEMA_V1_QUOTAS, so a new
 * quota kind changed the meaning of the old records; version 2 names
 * them.  A version-1 file is read (its records are version 2's but for
 * "#quotas"), and its "#quotas" and "#format" put again with the first
 * commit, so an upgrade by restart or live update keeps the host's state;
 * a file of any other version is refused at start with its version in
 * the log.
 *
 * The journal, <database>.journal (and <database>.journal.old while a
 * compaction applies it to the tdb file), SCHEMA_JOURNAL_VERSION 3: the
 * changes committed since the tdb file was brought up to date, in order.
 * Version 2 is read too (and written on, when a start finds one): version
 * 3 without the salt, its sums of seed 0, zeros where version 3 may have
 * another life's bytes (below).  Version 1 is version 2 with every node's
 * birth given (a record of a node a put changes says "as before" since
 * version 2, because a node no longer keeps its birth in memory).
 *
 *   head               str "xenstored-journal", u32 version,
 *                      u64 salt (version 3): drawn for each life of the
 *                      file (a spare's file is used again)
 *   then frames        one a commit, appended whole (persist/journal.h),
 *                      head first:
 *     u32 length       of the payload (at least one change)
 *     u32 sum          the payload's checksum: the low 32 bits of its
 *                      XXH3-64 (libxxhash), seeded with the salt
 *     u32 head sum     the same of the 8 bytes before it: a damaged
 *                      length is refused, not taken for a frame cut short
 *     payload          changes, each a whole record of the tdb file:
 *       u8 1 (put), bytes key, bytes value      set key to value
 *       u8 2 (delete), bytes key                remove key (if there)
 *
 * A journal's last frame may be "#superseded": a put of u64 mark, which
 * the rewrite that wrote a file with that "#rewrite" appended before it
 * renamed the file into place.
 *
 * A key is 1 .. SCHEMA_JOURNAL_KEY_MAX bytes without a NUL (a node's
 * path, or a '#' key); a node's value must be a node record.  Replaying
 * a journal is idempotent: each change sets or removes a whole record.
 * The live journal's file is allocated ahead of its last frame, so it
 * may end in zeros: from a frame's start, zeros to the end of the file
 * end the journal.  In version 3 the file may hold an earlier life's
 * frames after the last one of its own: a frame whose head sum fails
 * under the salt ends the journal, unless a whole frame of this salt
 * comes later in the file (damage).  A file that ends inside a frame (a
 * write cut short), or whose last frame fails its check with nothing
 * after it but zeros (or, in version 3, no frame of its salt), has a
 * torn tail: the whole frames before it are the journal.  A bad frame
 * with other bytes after it (in version 3: a frame of its salt), or a
 * malformed change in a frame whose checksums hold, is damage.
 *
 * The live-update image, SCHEMA_LU_VERSION 1, one stream:
 *
 *   str "xenstored-lu", u32 version, u32 listening fd, str its path
 *                      ("": the socket systemd passed)
 *   u32 n, n x (queues, watch list)       socket clients (id: their fd)
 *   u32 n, n x queues                     guest connections (id: domid)
 *
 *   queues             u32 id, bytes input not handled yet, bytes output
 *                      not sent yet
 */
#ifndef XS_SCHEMA_H
#define XS_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

#include "record/record.h"
#include "store/store.h"

#define SCHEMA_DB_MAGIC "xenstored-db"
#define SCHEMA_DB_VERSION 4
#define SCHEMA_DB_VERSION_OLDEST 1	/* still read, then rewritten */
#define SCHEMA_DB_VERSION_BLOCKS 3	/* the first with node blocks */
#define SCHEMA_DB_VERSION_COLUMNS 4	/* the first whose blocks keep
					 * heads, names and values apart */
/* A key of the journal, or a node's in the checkpoint, at most. */
#define SCHEMA_JOURNAL_KEY_MAX 4096	/* longer than any path */
#define SCHEMA_LU_MAGIC "xenstored-lu"
#define SCHEMA_LU_VERSION 1
#define SCHEMA_JOURNAL_MAGIC "xenstored-journal"
#define SCHEMA_JOURNAL_VERSION 3
#define SCHEMA_JOURNAL_VERSION_OLDEST 1	/* still read */
#define SCHEMA_JOURNAL_VERSION_SALTED 3	/* the first with a salt */

/* ---- keys ---- */

#define SCHEMA_KEY_FORMAT "#format"
#define SCHEMA_KEY_QUOTAS "#quotas"
#define SCHEMA_KEY_NODES "#nodes"
#define SCHEMA_KEY_REWRITE "#rewrite"
#define SCHEMA_KEY_SUPERSEDED "#superseded"
#define SCHEMA_PREFIX_BLOCK "#nodes/"
/* Prefixes of the per-domain keys, for db_each; the domid follows. */
#define SCHEMA_PREFIX_DOMAIN "#domain/"
#define SCHEMA_PREFIX_INPUT "#input/"
#define SCHEMA_PREFIX_WATCHES "#watches/"
#define SCHEMA_KEY_MAX 32		/* any per-domain key, with its NUL */

void schema_key_domain(char key[SCHEMA_KEY_MAX], unsigned int domid);
void schema_key_input(char key[SCHEMA_KEY_MAX], unsigned int domid);
void schema_key_watches(char key[SCHEMA_KEY_MAX], unsigned int domid);

/* A node's key is its path; every other key starts with '#' (an empty
 * key is a node's, and a malformed one). */
static inline bool schema_key_is_node(const void *key, size_t len)
{
	return !len || *(const char *)key != '#';
}

/* ---- versions ---- */

enum schema_format {
	SCHEMA_OURS,		/* our magic, a version we read */
	SCHEMA_OTHER_VERSION,	/* our magic, a version we cannot read */
	SCHEMA_FOREIGN,		/* not ours */
};

void schema_write_format(struct writer *w);
/* The "#format" record; *version is set for SCHEMA_OURS (from
 * SCHEMA_DB_VERSION_OLDEST to SCHEMA_DB_VERSION) and SCHEMA_OTHER_VERSION. */
enum schema_format schema_decode_format(const void *p, size_t len,
					uint32_t *version);

/* "#rewrite" and "#superseded": a rewrite's mark.  schema_decode_mark:
 * the mark, or 0 when the record is malformed. */
void schema_write_mark(struct writer *w, uint64_t mark);
uint64_t schema_decode_mark(const void *p, size_t len);

/* ---- nodes ---- */

struct schema_node {
	uint64_t born;
	uint32_t nperms;
	const struct perm *perms;	/* writing: the nperms entries */
	const void *perms_raw;		/* reading: nperms encoded entries,
					 * checked; see schema_node_perm */
	const void *value;
	uint32_t value_len;
};

void schema_write_node(struct writer *w, const struct schema_node *n);
/* A node record under key: false if either is malformed.  The pointers
 * of *n borrow from p.  Its born may be 0 (a journal's "as before"):
 * whoever needs a birth resolves it. */
bool schema_decode_node(const void *key, size_t key_len, const void *p,
			size_t len, struct schema_node *n);
/* The birth the record at p (len bytes) under key gives: a node record's
 * born (its first 8 bytes); 0 for a '#' record, a record too short to
 * hold one, or one that says "as before". */
uint64_t schema_record_born(const void *key, size_t key_len, const void *p,
			    size_t len);
/* A node record's born (at least 8 bytes at p) set to born. */
void schema_node_set_born(void *p, uint64_t born);
/* Bytes at perms_raw: equal bytes are equal lists. */
static inline size_t schema_node_perms_len(const struct schema_node *n)
{
	return (size_t)n->nperms * 8;
}
/* Entry i (< nperms) of a decoded node. */
struct perm schema_node_perm(const struct schema_node *n, uint32_t i);

/* ---- the checkpoint's node blocks (from version 3) ---- */

#define SCHEMA_BLOCK_MAX (1u << 20)	/* a block's content, at most */

void schema_write_nodes_head(struct writer *w, uint32_t blocks,
			     uint64_t nodes);
bool schema_decode_nodes_head(const void *p, size_t len, uint32_t *blocks,
			      uint64_t *nodes);
/* The key of block i (at most SCHEMA_KEY_MAX bytes with its NUL). */
void schema_key_block(char key[SCHEMA_KEY_MAX], uint32_t i);
/* *i of a "#nodes/<i>" key, spelt as schema_key_block does: false for any
 * other key. */
bool schema_key_is_block(const void *key, size_t len, uint32_t *i);

/*
 * Version 3's entry at r: its path made in path (SCHEMA_JOURNAL_KEY_MAX
 * bytes, holding the previous entry's path of *path_len bytes, or 0 for
 * a block's first), *path_len updated, *node and *node_len borrowed from
 * r.  false when the entry is malformed (shared longer than the previous
 * path, no rest, a path too long or not a node's key); the node record
 * itself is left to schema_decode_node.  Only read: a version-3 file's
 * blocks, until its first compaction writes them as version 4.
 */
bool schema_read_v3_entry(struct reader *r, char *path, size_t *path_len,
			  const void **node, uint32_t *node_len);

/* A growing run of bytes (a block's part being made). */
struct schema_bytes {
	unsigned char *p;
	size_t len, cap;
};

/*
 * A version-4 block's content being made: each node added with
 * schema_block_add, then laid out whole by schema_block_finish.  Zero it
 * to start; schema_block_free frees it.
 */
struct schema_block {
	struct schema_bytes head, names, values, out;
	char prev[SCHEMA_JOURNAL_KEY_MAX];	/* the last entry's path */
	size_t prev_len;
	uint64_t prev_born;
	struct schema_bytes prev_perms;	/* the last entry's, encoded */
	uint64_t entries;
};

/* Node n under path (plen bytes, a node's key of at most
 * SCHEMA_JOURNAL_KEY_MAX) as the block's next entry: false when memory
 * runs out (the block as it was). */
bool schema_block_add(struct schema_block *b, const char *path, size_t plen,
		      const struct schema_node *n);
/* The bytes the content holds so far (schema_block_finish's, less its
 * few bytes of lengths). */
static inline size_t schema_block_len(const struct schema_block *b)
{
	return b->head.len + b->names.len + b->values.len;
}
/* The content of what was added (at least one entry), borrowed until the
 * next call on b, and b emptied for the next block: false when memory
 * runs out. */
bool schema_block_finish(struct schema_block *b, const void **p,
			 size_t *len);
void schema_block_free(struct schema_block *b);

/* A version-4 block's content being read (schema_block_open). */
struct schema_block_reader {
	struct reader head, names, values;
	char path[SCHEMA_JOURNAL_KEY_MAX];	/* the entry's */
	size_t path_len;
	uint64_t born;
	struct schema_bytes perms;	/* the entry's, as struct perm (one
					 * entry says "as the previous") */
	struct schema_bytes rec;	/* the entry's node record */
};

/* The content at p (len bytes, valid while it is read): false when its
 * lengths do not add up or it holds no entry.  br's buffers are kept
 * from one block to the next; schema_block_reader_free frees them. */
bool schema_block_open(struct schema_block_reader *br, const void *p,
		       size_t len);
/*
 * The next entry: 1, its path in br->path (br->path_len bytes) and its
 * node record at *rec (*rec_len bytes, valid until the next call); 0 at
 * the end, every byte of the content read; -1 when it is malformed (as
 * schema_read_v3_entry's, or a part with bytes left over or too few,
 * or a permission list "as before" in a block's first entry); -2 when
 * memory runs out.  The node record itself is left to
 * schema_decode_node.
 */
int schema_block_next(struct schema_block_reader *br, const void **rec,
		      size_t *rec_len);
void schema_block_reader_free(struct schema_block_reader *br);

/* ---- domains ---- */

struct schema_domain {
	uint32_t domid;
	uint64_t gfn;
	uint32_t port;
	uint32_t features;
	uint32_t target;
	bool introduced;
	bool shutdown_seen;
};

void schema_write_domain(struct writer *w, const struct schema_domain *d);
bool schema_decode_domain(const void *p, size_t len, struct schema_domain *d);

/* The start of a request that left a guest's ring. */
struct schema_input {
	uint32_t end;			/* the ring index after its bytes */
	const void *bytes;		/* borrowed */
	uint32_t len;
};

/* bytes: all of them, unchanged. */
void schema_write_input(struct writer *w, uint32_t end,
			struct evbuffer *bytes);
bool schema_decode_input(const void *p, size_t len, struct schema_input *in);

/* ---- watch lists ---- */

struct schema_watch {
	const char *path;		/* borrowed */
	const char *token;
	uint32_t strip;			/* bytes of path a guest does not see */
	int32_t depth;			/* -1: any */
	bool held;			/* an event is held back for it */
};

/* A list is written as its count, then each watch. */
void schema_write_watch_count(struct writer *w, uint32_t n);
void schema_write_watch(struct writer *w, const struct schema_watch *sw);
/*
 * Each watch of the list at r to fn, in order (0 to go on, -1 to stop):
 * 0, or -1 when the list is malformed or fn stopped.  decode: the list
 * is the whole record.
 */
int schema_read_watches(struct reader *r,
			int (*fn)(const struct schema_watch *sw, void *arg),
			void *arg);
int schema_decode_watches(const void *p, size_t len,
			  int (*fn)(const struct schema_watch *sw, void *arg),
			  void *arg);

/* ---- quotas ---- */

#define SCHEMA_QUOTA_GLOBAL UINT32_MAX	/* the domid of a global limit */

struct schema_quota {
	uint32_t domid;
	const char *name;		/* borrowed */
	uint32_t value;
};

/* The record is written as its head, then n quotas. */
void schema_write_quotas_head(struct writer *w, uint32_t soft_memory,
			      uint32_t n);
void schema_write_quota(struct writer *w, const struct schema_quota *q);
/*
 * The "#quotas" record of a file of version (a #format's): *soft_memory,
 * and each quota to fn (which may be NULL: the record is only checked) as
 * for the watches; a version-1 record's positions come out as names.
 * 0, or -1.
 */
int schema_decode_quotas(const void *p, size_t len, uint32_t version,
			 uint32_t *soft_memory,
			 int (*fn)(const struct schema_quota *q, void *arg),
			 void *arg);

/* ---- the journal ---- */

#define SCHEMA_FRAME_HEAD 12		/* length, sum, head sum */

/* A head of version (SCHEMA_JOURNAL_VERSION, or 2 for a journal a start
 * found and writes on) with salt (version 3; 0 before), by a writer or
 * at p (at most SCHEMA_JOURNAL_HEAD_MAX bytes; its length returned). */
#define SCHEMA_JOURNAL_HEAD_MAX 64
void schema_write_journal_head(struct writer *w, uint32_t version,
			       uint64_t salt);
size_t schema_journal_head_at(unsigned char *p, uint32_t version,
			      uint64_t salt);
/* The bytes of this version's head, and of version's. */
size_t schema_journal_head_len(void);
size_t schema_journal_head_len_of(uint32_t version);
/*
 * The head at r: SCHEMA_OURS, or why not (*version as for the format;
 * *salt the head's, 0 before version 3).  *cut: the bytes are a
 * beginning of our head and end with the file (it was cut while being
 * made): SCHEMA_FOREIGN then.
 */
enum schema_format schema_read_journal_head(struct reader *r,
					    uint32_t *version, uint64_t *salt,
					    bool *cut);

enum schema_frame {
	SCHEMA_FRAME_WHOLE,	/* *payload, *len set; r past it */
	SCHEMA_FRAME_CUT,	/* the file ends inside it */
	SCHEMA_FRAME_BAD_LAST,	/* its payload fails the check; the file
				 * ends with it */
	SCHEMA_FRAME_BAD,	/* its head fails (*payload NULL), or its
				 * payload with bytes after it */
};

/* The frame at r (r->left > 0), summed with salt; its payload's checksum
 * only with check (without, for a journal this daemon wrote).  A whole
 * frame's changes are not looked at: schema_read_change does that. */
enum schema_frame schema_read_frame(struct reader *r, bool check,
				    uint64_t salt, const void **payload,
				    uint32_t *len);
/* Whether a whole frame of salt, both its sums holding, starts at p
 * (left bytes from p to the end of the file). */
bool schema_frame_at(const unsigned char *p, size_t left, uint64_t salt);
/* Fill the SCHEMA_FRAME_HEAD bytes in front of a payload of len bytes,
 * summed with salt. */
void schema_seal_frame(unsigned char *head, const void *payload,
		       uint32_t len, uint64_t salt);

struct schema_change {
	bool put;
	const void *key;		/* borrowed; no NUL */
	uint32_t key_len;
	const void *value;		/* put only */
	uint32_t value_len;
};

void schema_write_change(struct writer *w, const struct schema_change *c);
/* A put of key whose value is all of value's bytes. */
void schema_write_put(struct writer *w, const char *key,
		      struct evbuffer *value);
/* The bytes of node n's record (schema_write_node's). */
static inline size_t schema_node_len(const struct schema_node *n)
{
	return 8 + 4 + schema_node_perms_len(n) + 4 + n->value_len;
}

/* A put of node n under path (klen bytes): schema_put_node_len bytes,
 * which schema_put_node_at writes at p (a node changes at every write: it
 * is encoded straight into the frame, not through a writer). */
static inline size_t schema_put_node_len(size_t klen,
					 const struct schema_node *n)
{
	return 1 + 4 + klen + 4 + schema_node_len(n);
}

void schema_put_node_at(unsigned char *p, const char *path, size_t klen,
			const struct schema_node *n);
void schema_write_delete(struct writer *w, const char *key);
/*
 * The next change of a payload: false if it is malformed.  Its op, its
 * lengths and the key's are always checked; with check, also that the key
 * has no NUL and that a node's value is a node record (without, for a
 * journal this daemon wrote and whose frames' checksums hold).
 */
bool schema_read_change(struct reader *r, struct schema_change *c,
			bool check);

/* ---- the live-update image ---- */

struct schema_lu_head {
	uint32_t listen_fd;
	const char *listen_path;	/* "": systemd's socket; borrowed */
};

void schema_write_lu_head(struct writer *w, const struct schema_lu_head *h);
/* SCHEMA_OURS with *h filled, or why not (*version as for the format). */
enum schema_format schema_read_lu_head(struct reader *r,
				       struct schema_lu_head *h,
				       uint32_t *version);

/* One connection's queued bytes. */
struct schema_queues {
	uint32_t id;			/* a socket client's fd, a guest's domid */
	const void *in;			/* borrowed */
	uint32_t in_len;
	const void *out;
	uint32_t out_len;
};

void schema_write_queues_count(struct writer *w, uint32_t n);
/* The first in_len bytes of in; all of out, then extra. */
void schema_write_queues(struct writer *w, uint32_t id, struct evbuffer *in,
			 size_t in_len, struct evbuffer *out,
			 const void *extra, size_t extra_len);
bool schema_read_queues_count(struct reader *r, uint32_t *n);
bool schema_read_queues(struct reader *r, struct schema_queues *q);

#endif
