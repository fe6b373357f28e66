/*
 * Handlers of the node operations: READ WRITE MKDIR RM DIRECTORY
 * DIRECTORY_PART GET_PERMS SET_PERMS.  Every node access goes through the
 * transactions view, so each works the same inside a transaction.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "domains/domain.h"
#include "ops/ops_impl.h"
#include "permissions/permissions.h"
#include "store/keyed_hash.h"
#include "store/path.h"

/* Resolve the request's single path argument into call->path. */
static int single_path(struct op_call *call, bool allow_special)
{
	return op_path(call, wire_single_arg(call->req), allow_special);
}

int op_read(struct op_call *call)
{
	struct view_node n;
	int err = single_path(call, false);

	if (err || (err = op_get_node(call, PERM_READ, &n)))
		return err;
	reply_append(call->reply, n.value, n.value_len);
	return 0;
}

/* Bytes of a node's children listing, as the request sees it, counted no
 * further than the node-size quota needs. */
static size_t children_len(struct op_call *call, const char *path)
{
	unsigned int limit = op_limit(call, QUOTA_NODE_SIZE);

	return view_children_len(&call->srv->store, call->tx, path,
				 limit ? limit : SIZE_MAX);
}

/*
 * The quotas a write of len bytes to call->path must respect: node size,
 * and for a creation the nodes the caller owns, the size of the parent
 * that gains a child, and memory.  Only unprivileged callers have limits.
 */
static int check_write(struct op_call *call, const struct perms *perms,
		       size_t len, const struct view_node *old)
{
	struct store *st = &call->srv->store;
	unsigned int size_limit = op_limit(call, QUOTA_NODE_SIZE);
	unsigned int nodes_limit = op_limit(call, QUOTA_NODES);
	char anc[OP_PATH_BUF], child[OP_PATH_BUF];
	struct view_node an;
	long owned, created = 0;

	if (call->c->who.privileged)
		return 0;
	if (old)	/* a new value: only growth costs memory */
		return quota_exceeded(size_limit, quota_node_size(perms->n, len,
					children_len(call, call->path)))
		       ? ENOSPC : op_check_memory(call, len > old->value_len
							? len - old->value_len : 0);
	if (quota_exceeded(size_limit, quota_node_size(perms->n, len, 0)))
		return ENOSPC;
	/* Count the missing nodes up to the nearest existing ancestor. */
	strcpy(child, call->path);
	strcpy(anc, call->path);
	do {
		created++;
		strcpy(child, anc);
		if (!path_parent(child, anc, sizeof(anc)))
			return EINVAL;
	} while (!view_get(st, call->tx, anc, &an));
	owned = call->c->who.domid < STORE_DOMIDS
		? st->use[call->c->who.domid].owned : 0;
	if (call->tx)
		owned += txn_net_nodes(call->tx);
	if (owned + created > 0 &&
	    quota_exceeded(nodes_limit, (unsigned long)(owned + created)))
		return ENOSPC;
	if (quota_exceeded(size_limit, quota_node_size(an.perms->n,
			an.value_len, children_len(call, anc) +
			strlen(child) - strlen(anc))))
		return ENOSPC;
	/* What the store will charge (store.c node_bytes): a record and
	 * a name each, no name longer than the path. */
	return op_check_memory(call, len + (size_t)created *
			       (sizeof(struct node) + strlen(call->path) + 1));
}

/*
 * Write call->path, creating it (and missing parents) when needed.  New
 * nodes take the permissions of their nearest existing ancestor, which the
 * caller must be allowed to write; an unprivileged creator owns them.
 */
static int write_node(struct op_call *call, const void *data, size_t len,
		      bool keep_existing)
{
	struct store *st = &call->srv->store;
	const struct who *who = &call->c->who;
	struct view_node n, anc;
	struct perms *perms;
	int err = op_get_node(call, PERM_WRITE, &n);

	if (!err) {
		if (keep_existing)
			return 0;
		perms = perms_ref(n.perms);
	} else if (err == ENOENT) {
		view_nearest_ancestor(st, call->tx, call->path, &anc);
		perms = who->privileged
			? perms_ref(anc.perms)
			: perms_with_owner(anc.perms, who->domid);
		if (!perms)
			return ENOMEM;
	} else {
		return err;
	}
	err = check_write(call, perms, len, err ? NULL : &n);
	if (!err)
		err = view_write(st, call->tx, call->path, perms, data, len);
	/* The node's permissions are those written.  Inside a transaction,
	 * the commit tells the watchers. */
	if (!err && !call->tx)
		server_fire(call->srv, call->path, false, perms, NULL);
	perms_unref(perms);
	return err;
}

int op_write(struct op_call *call)
{
	const struct request *req = call->req;
	const char *argv[1];
	size_t off;
	int err;

	/* The value may contain NULs: only the path is a string. */
	if (wire_split(req, argv, 1) < 1)
		return EINVAL;
	err = op_path(call, argv[0], false);
	if (err)
		return err;
	off = strlen(argv[0]) + 1;
	err = write_node(call, req->payload + off, req->hdr.len - off, false);
	return err ? err : op_ok(call);
}

int op_mkdir(struct op_call *call)
{
	int err = single_path(call, false);

	if (err || (err = write_node(call, NULL, 0, true)))
		return err;
	return op_ok(call);
}

int op_rm(struct op_call *call)
{
	struct store *st = &call->srv->store;
	struct perms *perms;
	struct view_node n;
	int err = single_path(call, false);

	if (err)
		return err;
	err = op_get_node(call, PERM_WRITE, &n);
	if (err == ENOENT) {
		char parent[OP_PATH_BUF];

		/* Already gone is fine, as long as the parent exists. */
		return path_parent(call->path, parent, sizeof(parent)) &&
		       view_get(st, call->tx, parent, &n) ? op_ok(call) : ENOENT;
	}
	if (err)
		return err;
	if (strcmp(call->path, "/") == 0)
		return EINVAL;
	perms = perms_ref(n.perms);	/* for the watchers, after removal */
	if (!call->tx)
		server_removing(call->srv, call->path);
	err = view_remove(st, call->tx, call->path);
	if (!err && !call->tx)
		server_fire(call->srv, call->path, true, perms, NULL);
	perms_unref(perms);
	return err ? err : op_ok(call);
}

static int append_name(const char *name, void *arg)
{
	struct reply *r = arg;

	reply_append_str(r, name);
	return r->overflow ? E2BIG : 0;
}

int op_directory(struct op_call *call)
{
	struct view_node n;
	const char *names;
	size_t len;
	int err = single_path(call, false);

	if (err || (err = op_get_node(call, PERM_READ, &n)))
		return err;
	err = view_list_block(&call->srv->store, call->tx, call->path, &names,
			      &len);
	if (err == EAGAIN)
		return view_list(&call->srv->store, call->tx, call->path,
				 append_name, call->reply);
	if (!err) {
		reply_append(call->reply, names, len);
		if (call->reply->overflow)
			err = E2BIG;
	}
	return err;
}

/* The whole children listing of a node, for DIRECTORY_PART. */
struct listing {
	char *buf;
	size_t len, size;
};

static int collect_name(const char *name, void *arg)
{
	struct listing *l = arg;
	size_t len = strlen(name) + 1;

	if (l->len + len > l->size) {
		size_t size = l->size ? l->size * 2 : 4096;
		char *buf;

		while (size < l->len + len)
			size *= 2;
		buf = realloc(l->buf, size);
		if (!buf)
			return ENOMEM;
		l->buf = buf;
		l->size = size;
	}
	memcpy(l->buf + l->len, name, len);
	l->len += len;
	return 0;
}

/*
 * The generation DIRECTORY_PART reports, which a client compares between
 * the parts it reads to know that the node did not change meanwhile: a
 * keyed 64-bit hash of what the node is (its children's names, its value
 * and permissions), since a node keeps no time of its last change
 * (store.h).  A node changed and changed back reports the same, and its
 * parts then fit together all the same.
 */
static uint64_t listing_generation(const struct view_node *n,
				   const char *names, size_t len)
{
	uint64_t h = keyed_hash64(names ? names : "", len);

	h ^= keyed_hash64(n->value ? n->value : "", n->value_len) * UINT64_C(0x9e3779b97f4a7c15);
	h ^= keyed_hash64(n->perms->e, n->perms->n * sizeof(n->perms->e[0])) *
	     UINT64_C(0xc2b2ae3d27d4eb4f);
	return h;
}

/*
 * The children listing from a byte offset: as many whole names as fit
 * after the generation; the chunk that reaches the end gets an extra NUL.
 */
int op_directory_part(struct op_call *call)
{
	struct listing l = { 0 };
	struct reply *r = call->reply;
	const char *argv[2], *names;
	unsigned long off;
	struct view_node n;
	size_t end, room, total;
	int err;

	if (wire_count_strings(call->req) != 2 ||
	    wire_split(call->req, argv, 2) != 2)
		return EINVAL;
	if (!wire_parse_uint(argv[1], UINT32_MAX, &off))
		return EINVAL;
	err = op_path(call, argv[0], false);
	if (err || (err = op_get_node(call, PERM_READ, &n)))
		return err;
	err = view_list_block(&call->srv->store, call->tx, call->path, &names,
			      &total);
	if (err == EAGAIN) {
		err = view_list(&call->srv->store, call->tx, call->path,
				collect_name, &l);
		names = l.buf;
		total = l.len;
	}
	if (err)
		goto out;

	reply_printf(r, "%" PRIu64, listing_generation(&n, names, total));
	reply_append(r, "", 1);
	if (off >= total) {
		reply_append(r, "", 1);
		goto out;
	}
	/* Whole names (from off, which may be mid-name as upstream allows)
	 * while they fit, keeping a byte for the end mark. */
	room = sizeof(r->buf) - r->len - 1;
	end = off;
	while (end < total) {
		size_t len = strnlen(names + end, total - end) + 1;

		if (end - off + len > room)
			break;
		end += len;
	}
	reply_append(r, names + off, end - off);
	if (end == total)
		reply_append(r, "", 1);
out:
	free(l.buf);
	return err;
}

int op_get_perms(struct op_call *call)
{
	struct view_node n;
	int err = single_path(call, true);

	if (err || (err = op_get_node(call, PERM_READ, &n)))
		return err;
	for (unsigned int i = 0; i < n.perms->n; i++) {
		char buf[16];

		perm_format(&n.perms->e[i], buf);
		reply_append_str(call->reply, buf);
	}
	return 0;
}

int op_set_perms(struct op_call *call)
{
	unsigned int count = wire_count_strings(call->req);
	const struct who *who = &call->c->who;
	struct perms *perms, *old;
	const char **argv;
	struct view_node n;
	int err;

	if (count < 2)
		return EINVAL;
	argv = calloc(count, sizeof(*argv));
	if (!argv)
		return ENOMEM;
	wire_split(call->req, argv, count);
	perms = perms_parse(argv + 1, count - 1);
	err = perms ? op_path(call, argv[0], true) : errno;
	free(argv);
	if (err || (err = op_get_node(call, PERM_WRITE | PERM_OWNER, &n)))
		goto out;
	/* Only the privileged may give a node away. */
	if (!who->privileged && perms->e[0].domid != n.perms->e[0].domid) {
		err = EPERM;
		goto out;
	}
	/* Entries for domains that do not exist grant nothing (XSA-322). */
	for (unsigned int i = 1; i < perms->n; i++)
		if (!server_domid_privileged(call->srv, perms->e[i].domid) &&
		    perms->e[i].domid < DOMAIN_ID_LIMIT &&
		    !domains_domid_exists(call->srv->domains,
					  perms->e[i].domid))
			perms->e[i].access |= PERM_IGNORE;
	if (quota_exceeded(op_limit(call, QUOTA_PERMS), perms->n) ||
	    quota_exceeded(op_limit(call, QUOTA_NODE_SIZE),
			   quota_node_size(perms->n, n.value_len,
			       children_len(call, call->path)))) {
		err = ENOSPC;
		goto out;
	}
	old = perms_ref(n.perms);	/* a watcher losing access is told */
	err = view_set_perms(&call->srv->store, call->tx, call->path, perms);
	if (!err && !call->tx)
		server_fire(call->srv, call->path, false, perms, old);
	perms_unref(old);
	if (!err)
		err = op_ok(call);
out:
	perms_unref(perms);
	return err;
}

int op_transaction_start(struct op_call *call)
{
	struct client *cl = call->c->owner_data;
	struct txn *t;
	int err;

	if (call->tx)
		return EBUSY;	/* no nesting */
	if (quota_exceeded(op_limit(call, QUOTA_TRANSACTIONS),
			   cl->txns.count + 1UL))
		return ENOSPC;
	err = op_check_memory(call, OPS_TXN_BYTES);
	if (err)
		return err;
	t = txn_start(&cl->txns);
	if (!t)
		return ENOMEM;
	if (op_limit(call, QUOTA_NODES))
		txn_count_nodes_of(t, call->c->who.domid);
	reply_printf(call->reply, "%" PRIu32, txn_id(t));
	reply_append(call->reply, "", 1);
	return 0;
}

static void fire_removing(const char *path, void *arg)
{
	server_removing(arg, path);
}

static void fire_change(const char *path, bool removed,
			const struct perms *perms, void *arg)
{
	server_fire(arg, path, removed, perms, NULL);
}

int op_transaction_end(struct op_call *call)
{
	struct client *cl = call->c->owner_data;
	const char *arg = wire_single_arg(call->req);
	int err;

	/* The argument is checked first, as upstream does. */
	if (!arg || (strcmp(arg, "T") != 0 && strcmp(arg, "F") != 0))
		return EINVAL;
	if (!call->tx)
		return ENOENT;
	if (arg[0] == 'F') {
		txn_discard(&cl->txns, call->tx);
		return op_ok(call);
	}
	/* Others may have created nodes of ours since: count again. */
	if (txn_net_nodes(call->tx) > 0 && call->c->who.domid < STORE_DOMIDS &&
	    quota_exceeded(op_limit(call, QUOTA_NODES),
			   call->srv->store.use[call->c->who.domid].owned +
			   (unsigned long)txn_net_nodes(call->tx))) {
		txn_discard(&cl->txns, call->tx);
		return ENOSPC;
	}
	err = txn_commit(&cl->txns, call->tx, &call->srv->store, fire_removing,
			 fire_change, call->srv);
	return err ? err : op_ok(call);
}
