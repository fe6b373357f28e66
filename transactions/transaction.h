/*
 * transactions: copy-on-write views of the store.
 *
 * A transaction starts empty: it copies nothing.  It records only what its
 * requests touch, one entry per path: the node as the transaction sees it
 * (its own writes and deletions, or a copy taken on first read so reads are
 * repeatable), and the store's generation when it was first read or
 * listed.  From its first read a transaction holds the store (store_hold),
 * which then stamps every change.  Commit asks, of exactly those nodes,
 * whether they changed since (their value, permissions or existence for a
 * read; their children for a listing), and answers EAGAIN if any did;
 * otherwise it applies the writes and reports each changed path, in the
 * order the transaction first changed them.  An unrelated write, or a
 * sibling created beside ours, never fails a commit: creating a child
 * checks its parent as read (existence, permissions), not its list of
 * children.  Start and commit cost what the transaction touched, never
 * the size of the store.
 *
 * The view_* functions are what request handlers use for every node access:
 * with t == NULL they act on the live store directly.
 */
#ifndef XS_TRANSACTION_H
#define XS_TRANSACTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct txn;

/* The open transactions of one connection. */
struct txn_set {
	struct txn *head;	/* owned */
	uint32_t last_id;
	unsigned int count;
	unsigned long *open_total;	/* if set: counts every set's txns */
};

/* One node as a request sees it. */
struct view_node {
	const char *value;	/* borrowed: valid until the next view call */
	uint32_t value_len;
	struct perms *perms;	/* borrowed, likewise */
};

void txn_set_init(struct txn_set *set);
/* Discard every open transaction of the set. */
void txn_set_clear(struct txn_set *set);

/* Open a transaction with an id that is nonzero and unused in set. */
struct txn *txn_start(struct txn_set *set);
uint32_t txn_id(const struct txn *t);
/*
 * Open a transaction under an id a client got from before a restart (not
 * in use in set, nonzero): it works as any other, but its commit answers
 * EAGAIN, since what it did before the restart is lost.
 */
struct txn *txn_adopt(struct txn_set *set, uint32_t id);
struct txn *txn_find(const struct txn_set *set, uint32_t id);
void txn_discard(struct txn_set *set, struct txn *t);

/*
 * For the quotas: the nodes t has touched (read, listed or written); the
 * net change it makes to the nodes domid owns, once asked to count them
 * (created minus deleted, its own creations included); the memory all of
 * a set's transactions hold.
 */
unsigned int txn_nodes(const struct txn *t);
void txn_count_nodes_of(struct txn *t, unsigned int domid);
long txn_net_nodes(const struct txn *t);
size_t txn_set_bytes(const struct txn_set *set);

/*
 * What a commit changed, for the watch engine: a node written, created or
 * given new permissions (removed false, perms its permissions now), or a
 * node removed with its subtree by an RM of it (removed true, perms those it
 * had).  Nodes only removed along with an ancestor, and parents created
 * only to hold a new node, are not reported.
 */
typedef void txn_changed_fn(const char *path, bool removed,
			    const struct perms *perms, void *arg);

/* A node about to be removed with its subtree by a commit (still live). */
typedef void txn_removing_fn(const char *path, void *arg);

/*
 * Commit t into s and free it, whatever the outcome.  0: applied, and
 * changed() was called for each changed path, in the order the transaction
 * first changed them (and before anything was applied, removing() for
 * each path changed() will report removed); EAGAIN: a node it read or
 * listed changed since, nothing applied; ENOMEM: no memory, earlier in
 * the transaction or for applying it, nothing applied.  Either callback
 * may be NULL.
 */
int txn_commit(struct txn_set *set, struct txn *t, struct store *s,
	       txn_removing_fn *removing, txn_changed_fn *changed, void *arg);

/* Does path exist?  Fills out when it does.  Records the read in t. */
bool view_get(struct store *s, struct txn *t, const char *path,
	      struct view_node *out);

/* The nearest existing strict ancestor of path (not "/"); records it. */
void view_nearest_ancestor(struct store *s, struct txn *t, const char *path,
			   struct view_node *out);

/*
 * Call fn with the name of each child of path, in creation order; records
 * the listing in t.  Stops early and returns what fn returned when that is
 * nonzero; ENOENT when path does not exist.
 */
int view_list(struct store *s, struct txn *t, const char *path,
	      int (*fn)(const char *name, void *arg), void *arg);
/*
 * The same listing as one block of NUL-terminated names, when it can be
 * had without building it: outside a transaction, from the store's cache.
 * 0 with *names and *len (*len 0: no children); ENOENT; EAGAIN when the
 * caller must use view_list.
 */
int view_list_block(struct store *s, struct txn *t, const char *path,
		    const char **names, size_t *len);

/*
 * Set the value of path, creating it and its missing ancestors with
 * new_perms.  0 or ENOMEM.
 */
int view_write(struct store *s, struct txn *t, const char *path,
	       struct perms *new_perms, const void *data, size_t len);

/* Replace the permissions of path.  0, ENOENT or ENOMEM. */
int view_set_perms(struct store *s, struct txn *t, const char *path,
		   struct perms *perms);

/* Bytes of the children listing of path as t sees it, without recording a
 * listing (so no conflict on siblings added meanwhile); once past max,
 * some count past max (node_children_len). */
size_t view_children_len(struct store *s, struct txn *t, const char *path,
			 size_t max);

/* Delete path (not "/") and its subtree.  0, ENOENT or ENOMEM. */
int view_remove(struct store *s, struct txn *t, const char *path);

#endif
