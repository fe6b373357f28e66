/*
 * store/ internals: when nodes last changed, for the open transactions.
 *
 * A transaction's commit asks, of each node it read or listed, whether
 * the node changed after that read (transactions/transaction.h).  Only
 * then is the time of a change needed, so a node's record holds none:
 * while some transaction holds the store (store_hold), each change puts
 * its node's id and the store's new generation in this table; while none
 * does, nothing is kept and the table is empty.  A node without an entry
 * last changed before the oldest hold began, which is before any read a
 * holder can compare with.  So entries older than the oldest hold are
 * dropped whenever the table would grow, and memory follows the nodes
 * changed while the oldest open transaction was open: none on a host at
 * rest, 24 bytes a node changed meanwhile otherwise.
 *
 * Open addressing with linear probing, at most three quarters full, keyed
 * by node id: ids are pool indices that nobody outside chooses, so an
 * unkeyed multiplicative hash spreads them.  Growth can fail; then the
 * table says "lost" and every node counts as changed (its holders' commits
 * answer EAGAIN, which is safe) until the last hold ends.
 */
#ifndef XS_STORE_STAMPS_H
#define XS_STORE_STAMPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct stamp {
	uint32_t id;			/* a node's pool id; 0: empty */
	uint64_t gen;			/* last change of its value, permissions
					 * or existence (0: none kept) */
	uint64_t cgen;			/* last change of its children (0: none
					 * kept) */
};

struct stamps {
	struct stamp *slots;		/* NULL until the first stamp */
	size_t mask;			/* slots - 1 (a power of two) */
	size_t count;
	bool lost;			/* a stamp could not be kept */
};

/* Which times a change sets. */
enum {
	STAMP_NODE = 1 << 0,
	STAMP_LIST = 1 << 1,
};

/*
 * Node id changed at generation gen (what says which times): if the table
 * must grow, its entries of floor or before go first.  On ENOMEM the table
 * is lost instead.
 */
void stamps_put(struct stamps *st, uint32_t id, uint64_t gen,
		unsigned int what, uint64_t floor);

/* The stamp of id: its times, zeros when none is kept. */
struct stamp stamps_get(const struct stamps *st, uint32_t id);

/* Forget every stamp (and that any was lost). */
void stamps_clear(struct stamps *st);

#endif
