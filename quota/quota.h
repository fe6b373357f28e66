/*
 * quota: the limits that keep one unprivileged domain from hurting the
 * host or its neighbours, with upstream's names and defaults.
 *
 * Owns the global hard limits, the soft memory limit, and per-domain
 * overrides (SET_QUOTA <domid>).  It only answers "what is the limit";
 * the counts it is compared with live where the things are (the store
 * counts owned nodes and their bytes, a connection its watches and
 * transactions).  A limit of 0 means unlimited.  dom0 and the privileged
 * domain are never checked: callers skip them.
 */
#ifndef XS_QUOTA_H
#define XS_QUOTA_H

#include <stdbool.h>
#include <stddef.h>

#include <uthash.h>

#include "record/record.h"

enum quota_kind {
	QUOTA_NODES,		/* nodes a domain owns */
	QUOTA_WATCHES,		/* watches of a domain */
	QUOTA_TRANSACTIONS,	/* open transactions of a domain */
	QUOTA_OUTSTANDING,	/* replies queued for a domain, unread */
	QUOTA_TXN_NODES,	/* nodes one transaction may touch */
	QUOTA_MEMORY,		/* bytes a domain holds (hard: refused) */
	QUOTA_NODE_SIZE,	/* bytes of one node: header, perms, value, children */
	QUOTA_PATH_MAX,		/* length of a path relative to the home */
	QUOTA_PERMS,		/* entries of one permission list */
	QUOTA_KINDS
};

struct quota_domain;

struct quotas {
	unsigned int hard[QUOTA_KINDS];
	unsigned int soft_memory;		/* logged when crossed */
	struct quota_domain *domains;		/* uthash: overrides, owned */
};

void quotas_init(struct quotas *q);
void quotas_destroy(struct quotas *q);

/* Name to kind ("node-permissions" is accepted for "permissions"). */
bool quota_parse_name(const char *name, enum quota_kind *kind);
const char *quota_name(enum quota_kind kind);
const char *quota_description(enum quota_kind kind);

/* The limit for domid: its override, else the global one; 0: none. */
unsigned int quota_limit(const struct quotas *q, unsigned int domid,
			 enum quota_kind kind);
/* Override one limit of domid; ENOMEM or 0. */
int quota_set_domain(struct quotas *q, unsigned int domid,
		     enum quota_kind kind, unsigned int value);
/* Drop every override of a domain that is gone. */
void quota_forget_domain(struct quotas *q, unsigned int domid);

/*
 * Save every limit and override / load them back over what q holds.
 * quotas_load: 0, or -1 for a malformed record (q is then unchanged in
 * its global limits, and may hold some of the overrides).
 */
void quotas_save(const struct quotas *q, struct writer *w);
int quotas_load(struct quotas *q, struct reader *r);

/* Would value break limit? */
static inline bool quota_exceeded(unsigned int limit, unsigned long value)
{
	return limit && value > limit;
}

/* Bytes a node counts for node-size: header, 8 per permission, value,
 * children's names (upstream's measure). */
static inline size_t quota_node_size(unsigned int nperms, size_t value_len,
				     size_t children_len)
{
	return 16 + 8 * (size_t)nperms + value_len + children_len;
}

#endif
