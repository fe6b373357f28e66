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

/*
 * Every quota kind, in one list: adding a kind is one line here.  Each is
 * X(enum suffix, name (SET_QUOTA, -Q, the database), upstream's default,
 * upstream's short option or 0, its long option or NULL, description
 * (GET_QUOTA and xenstore-control quota print it)).  The order is the
 * order they are listed in; the database keeps them by name.
 */
#define QUOTA_LIST(X) \
	/* nodes a domain owns */ \
	X(NODES, "nodes", 1000, 'E', "entry-nb", "Nodes per domain") \
	/* watches of a domain */ \
	X(WATCHES, "watches", 128, 'W', "watch-nb", "Watches per domain") \
	/* open transactions of a domain */ \
	X(TRANSACTIONS, "transactions", 10, 't', "transaction", \
	  "Transactions per domain") \
	/* replies queued for a domain, unread */ \
	X(OUTSTANDING, "outstanding", 20, 0, NULL, \
	  "Outstanding requests per domain") \
	/* nodes one transaction may touch */ \
	X(TXN_NODES, "transaction-nodes", 1024, 0, NULL, \
	  "Max. number of accessed nodes per transaction") \
	/* bytes a domain holds (hard: refused) */ \
	X(MEMORY, "memory", 2621440, 0, NULL, \
	  "Total Xenstore memory per domain (error level)") \
	/* bytes of one node: header, perms, value, children */ \
	X(NODE_SIZE, "node-size", 2048, 'S', "entry-size", \
	  "Max. size of a node") \
	/* length of a path relative to the home */ \
	X(PATH_MAX, "path-max", 2048, 'M', "path-max", \
	  "Max. length of a node path") \
	/* entries of one permission list */ \
	X(PERMS, "permissions", 5, 'A', "perm-nb", \
	  "Max. number of permissions per node")

enum quota_kind {
#define QUOTA_ENUM(id, name, value, letter, long_name, description) \
	QUOTA_##id,
	QUOTA_LIST(QUOTA_ENUM)
#undef QUOTA_ENUM
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
unsigned int quota_default(enum quota_kind kind);
/* Upstream's short option for kind (0: none) and its long one (NULL). */
int quota_option(enum quota_kind kind);
const char *quota_long_option(enum quota_kind kind);
/* The kind whose short option is letter. */
bool quota_parse_option(int letter, enum quota_kind *kind);

/* The limit for domid: its override, else the global one; 0: none. */
unsigned int quota_limit(const struct quotas *q, unsigned int domid,
			 enum quota_kind kind);
/* Override one limit of domid; ENOMEM or 0. */
int quota_set_domain(struct quotas *q, unsigned int domid,
		     enum quota_kind kind, unsigned int value);
/* Drop every override of a domain that is gone. */
void quota_forget_domain(struct quotas *q, unsigned int domid);

/*
 * Save every limit and override, by name (schema/schema.h's "#quotas") /
 * load them back over what q holds.  quotas_load: 0, or -1 for a
 * malformed record (q is then unchanged; after ENOMEM it may hold some
 * of the overrides).  A name this daemon does not know (a kind a newer
 * one added) is skipped with a warning.  version: the file's (db_version).
 */
void quotas_save(const struct quotas *q, struct writer *w);
int quotas_load(struct quotas *q, const void *data, size_t len,
		uint32_t version);

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
