/* ops: what the handler files share.  Not for use outside ops/. */
#ifndef XS_OPS_IMPL_H
#define XS_OPS_IMPL_H

#include <time.h>

#include "ops/ops.h"
#include "protocol/wire.h"
#include "store/path.h"
#include "transactions/transaction.h"

/* Room for a joined relative path plus its terminator. */
#define OP_PATH_BUF (PATH_ABS_MAX + 64)

/* One request being handled. */
struct op_call {
	struct server *srv;
	struct conn *c;
	const struct request *req;
	struct reply *reply;
	struct txn *tx;			/* the request's transaction, or NULL */
	struct watch *new_watch;	/* fires its first event after the reply */
	char path[OP_PATH_BUF];		/* canonical path of the request, if any */
};

/* A handler fills call->reply and returns 0, or returns an errno value. */
typedef int op_handler(struct op_call *call);

/* "OK\0", the reply of requests that return nothing else. */
int op_ok(struct op_call *call);

/*
 * Canonicalise a path argument into call->path: relative paths are joined
 * to the connection's home, then the syntax and the caller's length limit
 * are checked.  '@' paths pass only when allow_special.  0 or EINVAL.
 */
int op_path(struct op_call *call, const char *arg, bool allow_special);

/*
 * Get call->path, as the request's transaction sees it, when the caller
 * has every bit of need on it: 0.  Otherwise ENOENT (missing) or EACCES,
 * where a failure is reported as EACCES unless the caller has any bit of
 * need on the nearest existing ancestor (as upstream), so unreadable parts
 * of the tree reveal nothing.
 */
int op_get_node(struct op_call *call, unsigned int need,
		struct view_node *out);

/*
 * Quotas.  op_limit: the caller's limit of kind, 0 (none) for the
 * privileged.  op_check_memory: ENOMEM when the caller's domain holds, or
 * with `more` bytes would hold, more than its hard memory quota (and a
 * warning, once, past the soft one).  ops_domain_memory: what the domain
 * of c holds: the nodes it owns plus ops_conn_memory(c), c's watches,
 * transactions and queued output.  ops_quota_domain: may domid's quotas
 * be asked for (the master, or introduced)?  op_parse_quota_value: a
 * quota value, 0 (unlimited) to UINT_MAX - 1.
 */
unsigned int op_limit(const struct op_call *call, enum quota_kind kind);
/* What an empty transaction is charged, at its start. */
#define OPS_TXN_BYTES 64
int op_check_memory(struct op_call *call, size_t more);
size_t ops_domain_memory(struct server *srv, struct conn *c);
size_t ops_conn_memory(struct conn *c);
bool ops_quota_domain(struct server *srv, unsigned int domid);
bool op_parse_quota_value(const char *s, unsigned int *value);

/* Parse a domid argument (decimal, 0..65535); false if malformed. */
bool op_parse_domid(const char *s, unsigned int *domid);

op_handler op_read, op_write, op_mkdir, op_rm, op_directory,
	op_directory_part, op_get_perms, op_set_perms;
op_handler op_get_domain_path, op_is_domain_introduced, op_reset_watches;
op_handler op_introduce, op_release, op_resume, op_set_target,
	op_get_feature, op_set_feature;
op_handler op_control;
op_handler op_get_quota, op_set_quota;
op_handler op_transaction_start, op_transaction_end;
op_handler op_watch, op_unwatch;

#endif
