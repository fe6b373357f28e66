/*
 * transactions/ internals: a transaction and its entries, shared by
 * transaction.c (the set, start, commit) and view.c (reads and writes
 * through a transaction, or straight on the store).
 */
#ifndef XS_TXN_IMPL_H
#define XS_TXN_IMPL_H

#include "store/keyed_hash.h"

/* A guest chooses the paths its transactions touch: keyed. */
#define HASH_FUNCTION KEYED_HASH_FUNCTION
#include <uthash.h>

#include "store/path.h"
#include "transactions/transaction.h"

enum {
	E_CHECK_NODE = 1 << 0,	/* commit needs the live node as read */
	E_CHECK_LIST = 1 << 1,	/* commit needs its children as listed */
	E_EXISTS = 1 << 2,	/* the node exists in the transaction's view */
	E_MODIFIED = 1 << 3,	/* on the change list: applied at commit */
	E_FRESH = 1 << 4,	/* deleted or created here: live children hidden */
	E_LISTED = 1 << 5,	/* kids holds the live children at first listing */
	E_REMOVED = 1 << 6,	/* deleted by an RM of this very path */
	E_IMPLICIT = 1 << 7,	/* created only as a parent of another node */
	E_READ_LIVE = 1 << 8,	/* the live node existed when first read */
	E_LISTED_LIVE = 1 << 9,	/* ... and when first listed */
};

struct entry {
	UT_hash_handle hh;		/* in txn.entries, keyed by path */
	struct entry *next_change;	/* change list, first-change order */
	unsigned int flags;
	unsigned int seq;		/* position on the change list */
	uint64_t read_at, listed_at;	/* the store's generation when first
					 * read, and listed (store_now) */
	char *value;			/* owned */
	uint32_t value_len;
	struct perms *perms;		/* one reference; NULL unless E_EXISTS */
	struct perms *gone_perms;	/* perms when E_REMOVED, for watches */
	char **kids;			/* owned names, when E_LISTED */
	unsigned int nkids;
	char path[];
};

struct txn {
	struct txn *next;		/* in txn_set.head */
	struct store_hold hold;		/* on the store, from its first read */
	uint32_t id;
	bool failed;			/* ran out of memory: commit says ENOMEM */
	bool adopted;			/* from before a restart: commit EAGAIN */
	size_t bytes;			/* what its entries hold (memory quota) */
	/* For the nodes quota: nodes it made exist, and nodes of owner it
	 * deleted (its own creations included); owner -1: not counted. */
	long owner;
	unsigned int created, deleted;
	struct entry *entries;		/* uthash head, owned */
	struct entry *changes, **changes_tail;
	unsigned int nchanges;
};

#define PATH_BUF (PATH_ABS_MAX + 64)

struct entry *entry_find(const struct txn *t, const char *path);
/* A new, empty entry for path (NULL on ENOMEM: t is marked failed). */
struct entry *entry_add(struct txn *t, const char *path);
/* Put e on the change list (once), to be applied at commit. */
void mark_modified(struct txn *t, struct entry *e);
void entry_clear(struct txn *t, struct entry *e);
void free_kids(struct txn *t, struct entry *e);

#endif
