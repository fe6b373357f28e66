/* ops: what the handler files share.  Not for use outside ops/. */
#ifndef XS_OPS_IMPL_H
#define XS_OPS_IMPL_H

#include "ops/ops.h"
#include "protocol/wire.h"
#include "store/path.h"

/* Room for a joined relative path plus its terminator. */
#define OP_PATH_BUF (PATH_ABS_MAX + 64)

/* One request being handled. */
struct op_call {
	struct server *srv;
	struct conn *c;
	const struct request *req;
	struct reply *reply;
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
 * The node at call->path when the caller has every bit of need on it.
 * Otherwise NULL and *err is ENOENT (missing) or EACCES, where a failure is
 * reported as EACCES unless the caller has need on the nearest existing
 * ancestor, so unreadable parts of the tree reveal nothing.
 */
struct node *op_get_node(struct op_call *call, unsigned int need, int *err);

/* Nearest existing strict ancestor of a '/' path ("/" always exists). */
struct node *op_nearest_ancestor(struct op_call *call, const char *path);

/* Parse a domid argument (decimal, 0..65535); false if malformed. */
bool op_parse_domid(const char *s, unsigned int *domid);

op_handler op_read, op_write, op_mkdir, op_rm, op_directory,
	op_directory_part, op_get_perms, op_set_perms;
op_handler op_get_domain_path, op_is_domain_introduced, op_reset_watches;
op_handler op_control;

/* CONTROL check: verify the tree; nonzero when problems were found. */
unsigned int ops_check_store(struct server *srv);

#endif
