/*
 * The dispatch table and what every handler shares: path canonicalisation
 * and the access check that hides what a caller may not see.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "ops/ops_impl.h"
#include "store/path.h"

enum {
	OP_PRIV = 1 << 0,	/* dom0 / privileged domain only: else EACCES */
	OP_NOTID = 1 << 1,	/* tx_id is ignored (WATCH, UNWATCH) */
};

struct op_entry {
	op_handler *fn;		/* NULL: not supported, ENOSYS */
	unsigned int flags;
};

/* The table of protocol/wire.h's XS_MESSAGE_TYPES: a type without a
 * handler answers ENOSYS. */
#define TYPE_OP(type, name, handler, flags) [type] = { handler, flags },
static const struct op_entry op_table[XS_TYPE_MAX] = {
	XS_MESSAGE_TYPES(TYPE_OP)
};

/*
 * The write rate limit (XSA-206): while transactions are open, an
 * unprivileged domain's writes outside them, and its commits while others
 * are open, cost a token; tokens come back at WRITE_RATE per second up to
 * WRITE_BURST.  In debt, the connection is not read until it is paid, so a
 * guest rewriting a node in a loop cannot make every other domain's
 * transaction that reads it fail.
 */
#define WRITE_RATE 200.0
#define WRITE_BURST 10.0

static bool is_write(const struct request *req, const struct txn *tx)
{
	switch (req->hdr.type) {
	case XS_WRITE:
	case XS_MKDIR:
	case XS_RM:
	case XS_SET_PERMS:
		return !tx;
	case XS_TRANSACTION_END:
		return tx && req->hdr.len && req->payload[0] == 'T';
	default:
		return false;
	}
}

static void charge_write(struct server *srv, struct conn *c,
			 const struct request *req, struct txn *tx)
{
	struct client *cl = c->owner_data;
	unsigned long others = srv->open_txns - cl->txns.count;
	struct timespec now;
	double owed;

	if (c->who.privileged || !is_write(req, tx) ||
	    (tx ? others == 0 : srv->open_txns == 0))
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	cl->write_credit += WRITE_RATE *
		((double)(now.tv_sec - cl->credit_time.tv_sec) +
		 (double)(now.tv_nsec - cl->credit_time.tv_nsec) / 1e9);
	if (cl->write_credit > WRITE_BURST)
		cl->write_credit = WRITE_BURST;
	cl->credit_time = now;
	cl->write_credit -= 1.0;
	if (cl->write_credit >= 0)
		return;
	owed = -cl->write_credit / WRITE_RATE;
	conn_delay(c, &(struct timeval){ .tv_sec = 0,
					 .tv_usec = (suseconds_t)(owed * 1e6) + 1 });
}

/*
 * A guest served again after a crash may still use a transaction it
 * opened before: take it on (within the quota) so its requests work and
 * its commit answers EAGAIN, which makes the guest redo it (ENOENT would
 * fail its device set-up).
 */
static struct txn *adopt_lost(struct op_call *call)
{
	struct client *cl = call->c->owner_data;
	struct txn *t;

	if (!call->c->restored ||
	    quota_exceeded(op_limit(call, QUOTA_TRANSACTIONS),
			   cl->txns.count + 1UL))
		return NULL;
	t = txn_adopt(&cl->txns, call->req->hdr.tx_id);
	if (t && op_limit(call, QUOTA_NODES))
		txn_count_nodes_of(t, call->c->who.domid);
	return t;
}

void ops_dispatch(struct conn *c, const struct request *req)
{
	struct server *srv = c->hooks->owner;
	struct client *cl = c->owner_data;
	const struct op_entry *op = req->hdr.type < XS_TYPE_MAX
				    ? &op_table[req->hdr.type] : NULL;
	struct reply reply;
	struct op_call call = { .srv = srv, .c = c, .req = req,
				.reply = &reply };
	int err;

	reply_reset(&reply);
	if (!op || !op->fn)
		err = ENOSYS;
	else if ((op->flags & OP_PRIV) && !c->who.privileged)
		err = EACCES;
	else if (!(op->flags & OP_NOTID) && req->hdr.tx_id != 0 &&
		 !(call.tx = txn_find(&cl->txns, req->hdr.tx_id)) &&
		 !(call.tx = adopt_lost(&call)))
		err = ENOENT;	/* not an open transaction of this connection */
	else if (call.tx && req->hdr.type != XS_TRANSACTION_END &&
		 quota_exceeded(op_limit(&call, QUOTA_TXN_NODES),
				txn_nodes(call.tx) + 1UL))
		err = ENOSPC;	/* it touched as many nodes as it may */
	else if (call.tx && req->hdr.type != XS_TRANSACTION_END &&
		 (err = op_check_memory(&call, 0)))
		;	/* its copies hold all the domain may: only end it */
	else
		err = op->fn(&call);

	if (!err && reply.overflow)
		err = E2BIG;
	charge_write(srv, c, req, call.tx);
	/* Durable before the client hears of it: the reply waits on c until
	 * the loop turn's commit (server_turn_end). */
	if (err) {
		log_debug("connection %lu: %s failed: %s", c->id,
			  wire_type_name(req->hdr.type), wire_error_name(err));
		conn_send_error(c, req, err);
		return;
	}
	conn_send(c, req->hdr.type, req->hdr.req_id, req->hdr.tx_id,
		  reply.buf, reply.len);
	/* Not if the reply closed c (no memory): its watches are gone. */
	if (call.new_watch && !c->closing)
		watch_fire_initial(call.new_watch);
}

int op_ok(struct op_call *call)
{
	reply_append_str(call->reply, "OK");
	return 0;
}

int op_path(struct op_call *call, const char *arg, bool allow_special)
{
	const struct conn *c = call->c;
	size_t n;

	if (!arg)
		return EINVAL;
	if (path_is_special(arg)) {
		if (!allow_special || strlen(arg) >= sizeof(call->path))
			return EINVAL;
		strcpy(call->path, arg);
		return 0;
	}
	/* Copied by hand: a snprintf a request showed in profiles. */
	if (arg[0] == '/') {
		n = strlen(arg);
		if (n >= sizeof(call->path))
			return EINVAL;
		memcpy(call->path, arg, n + 1);
	} else {
		size_t h = strlen(c->home);

		n = strlen(arg);
		if (h + 1 + n >= sizeof(call->path))
			return EINVAL;
		memcpy(call->path, c->home, h);
		call->path[h] = '/';
		memcpy(call->path + h + 1, arg, n + 1);
	}
	if (!path_is_valid(call->path))
		return EINVAL;
	/* Guests are held to the relative limit; dom0 only to the absolute. */
	if (quota_exceeded(op_limit(call, QUOTA_PATH_MAX),
			   path_relative_len(call->path)))
		return EINVAL;
	return 0;
}

int op_get_node(struct op_call *call, unsigned int need,
		struct view_node *out)
{
	struct store *st = &call->srv->store;
	const struct who *who = &call->c->who;
	struct view_node anc;
	int err;

	if (view_get(st, call->tx, call->path, out)) {
		if ((perms_access(out->perms, who) & need) == need)
			return 0;
		err = EACCES;
	} else {
		err = ENOENT;
	}
	if (path_is_special(call->path))
		return err;
	view_nearest_ancestor(st, call->tx, call->path, &anc);
	return perms_access(anc.perms, who) & need ? err : EACCES;
}

bool op_parse_domid(const char *s, unsigned int *domid)
{
	unsigned long v;

	if (!s || !wire_parse_uint(s, PERM_DOMID_MAX, &v))
		return false;
	*domid = (unsigned int)v;
	return true;
}


