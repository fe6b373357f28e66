/*
 * Handlers of the node operations: READ WRITE MKDIR RM DIRECTORY
 * DIRECTORY_PART GET_PERMS SET_PERMS.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops_impl.h"
#include "permissions/permissions.h"
#include "store/path.h"

/* Resolve the request's single path argument into call->path. */
static int single_path(struct op_call *call, bool allow_special)
{
	return op_path(call, wire_single_arg(call->req), allow_special);
}

int op_read(struct op_call *call)
{
	struct node *n;
	int err = single_path(call, false);

	if (err)
		return err;
	n = op_get_node(call, PERM_READ, &err);
	if (!n)
		return err;
	reply_append(call->reply, n->value, n->value_len);
	return 0;
}

/*
 * Create call->path (and missing parents) with value data.  New nodes take
 * the permissions of their nearest existing ancestor, which the caller must
 * be allowed to write; an unprivileged creator becomes their owner.
 */
static int create_node(struct op_call *call, const void *data, size_t len)
{
	const struct who *who = &call->c->who;
	struct node *anc = op_nearest_ancestor(call, call->path);
	struct perms *perms;
	struct node *n;

	perms = who->privileged ? perms_ref(anc->perms)
				: perms_with_owner(anc->perms, who->domid);
	if (!perms)
		return ENOMEM;
	n = store_write(&call->srv->store, call->path, perms, data, len);
	perms_unref(perms);
	return n ? 0 : ENOMEM;
}

int op_write(struct op_call *call)
{
	const struct request *req = call->req;
	const char *argv[1];
	size_t off;
	struct node *n;
	int err;

	/* The value may contain NULs: only the path is a string. */
	if (wire_split(req, argv, 1) < 1)
		return EINVAL;
	err = op_path(call, argv[0], false);
	if (err)
		return err;
	off = strlen(argv[0]) + 1;
	n = op_get_node(call, PERM_WRITE, &err);
	if (!n && err != ENOENT)
		return err;
	if (n) {
		if (!store_write(&call->srv->store, call->path, n->perms,
				 req->payload + off, req->hdr.len - off))
			return ENOMEM;
	} else {
		err = create_node(call, req->payload + off, req->hdr.len - off);
		if (err)
			return err;
	}
	return op_ok(call);
}

int op_mkdir(struct op_call *call)
{
	struct node *n;
	int err = single_path(call, false);

	if (err)
		return err;
	n = op_get_node(call, PERM_WRITE, &err);
	if (!n) {
		if (err != ENOENT)
			return err;
		err = create_node(call, NULL, 0);
		if (err)
			return err;
	}
	return op_ok(call);
}

int op_rm(struct op_call *call)
{
	struct node *n;
	int err = single_path(call, false);

	if (err)
		return err;
	n = op_get_node(call, PERM_WRITE, &err);
	if (!n) {
		char parent[OP_PATH_BUF];
		size_t plen = path_parent_len(call->path);

		if (err != ENOENT)
			return err;
		/* Already gone is fine, as long as the parent exists. */
		memcpy(parent, call->path, plen);
		parent[plen] = '\0';
		if (plen && store_lookup(&call->srv->store, parent))
			return op_ok(call);
		return ENOENT;
	}
	if (!n->parent)
		return EINVAL;	/* "/" */
	store_remove(&call->srv->store, n, NULL, NULL);
	return op_ok(call);
}

int op_directory(struct op_call *call)
{
	struct node *n;
	int err = single_path(call, false);

	if (err)
		return err;
	n = op_get_node(call, PERM_READ, &err);
	if (!n)
		return err;
	if (n->children_len > sizeof(call->reply->buf))
		return E2BIG;
	for (struct node *c = n->first_child; c; c = c->next)
		reply_append_str(call->reply, node_name(c));
	return 0;
}

/*
 * The children listing from a byte offset, as many whole names as fit
 * after the generation; the chunk that reaches the end gets an extra NUL.
 */
int op_directory_part(struct op_call *call)
{
	const char *argv[2];
	unsigned long off;
	size_t done = 0, room;
	struct reply *r = call->reply;
	struct node *n, *c;
	int err;

	if (wire_count_strings(call->req) != 2 ||
	    wire_split(call->req, argv, 2) != 2)
		return EINVAL;
	if (!wire_parse_uint(argv[1], UINT32_MAX, &off))
		return EINVAL;
	err = op_path(call, argv[0], false);
	if (err)
		return err;
	n = op_get_node(call, PERM_READ, &err);
	if (!n)
		return err;

	reply_printf(r, "%" PRIu64, n->gen);
	reply_append(r, "", 1);
	if (off >= n->children_len) {
		reply_append(r, "", 1);
		return 0;
	}
	/* Skip to the name holding byte off (upstream allows mid-name). */
	for (c = n->first_child; c; c = c->next) {
		size_t len = strlen(node_name(c)) + 1;

		if (done + len > off)
			break;
		done += len;
	}
	room = sizeof(r->buf) - r->len - 1;	/* keep room for the end mark */
	for (size_t skip = off - done; c; c = c->next, skip = 0) {
		const char *name = node_name(c) + skip;
		size_t len = strlen(name) + 1;

		if (len > room)
			return 0;	/* the client asks again from here */
		reply_append(r, name, len);
		room -= len;
	}
	reply_append(r, "", 1);
	return 0;
}

int op_get_perms(struct op_call *call)
{
	struct node *n;
	int err = single_path(call, true);

	if (err)
		return err;
	n = op_get_node(call, PERM_READ, &err);
	if (!n)
		return err;
	for (unsigned int i = 0; i < n->perms->n; i++) {
		char buf[16];

		perm_format(&n->perms->e[i], buf);
		reply_append_str(call->reply, buf);
	}
	return 0;
}

int op_set_perms(struct op_call *call)
{
	unsigned int count = wire_count_strings(call->req);
	const struct who *who = &call->c->who;
	const char **argv;
	struct perms *perms;
	struct node *n;
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
	if (err)
		goto out;
	n = op_get_node(call, PERM_WRITE | PERM_OWNER, &err);
	if (!n)
		goto out;
	/* Only the privileged may give a node away. */
	if (!who->privileged && perms->e[0].domid != n->perms->e[0].domid) {
		err = EPERM;
		goto out;
	}
	store_set_perms(&call->srv->store, n, perms);
	err = op_ok(call);
out:
	perms_unref(perms);
	return err;
}
