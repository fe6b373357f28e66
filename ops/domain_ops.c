/*
 * Domain management requests (INTRODUCE, RELEASE, RESUME, SET_TARGET,
 * GET/SET_FEATURE, IS_DOMAIN_INTRODUCED, GET_DOMAIN_PATH) and the cleanup
 * of the tree when a domain is gone.  Argument checks and error names
 * live here; domains/ does the work.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "domains/domain.h"
#include "ops/ops_impl.h"

#define DOMID_SELF 0x7FF0u

/* argv[0..n) of exactly n strings, each a domid; false if malformed. */
static bool parse_domids(const struct op_call *call, unsigned int *ids,
			 unsigned int n)
{
	const char *argv[2];

	if (wire_count_strings(call->req) != n ||
	    wire_split(call->req, argv, n) != n)
		return false;
	for (unsigned int i = 0; i < n; i++)
		if (!op_parse_domid(argv[i], &ids[i]))
			return false;
	return true;
}

int op_get_domain_path(struct op_call *call)
{
	unsigned int domid;

	if (!op_parse_domid(wire_single_arg(call->req), &domid))
		return EINVAL;
	reply_printf(call->reply, "/local/domain/%u", domid);
	reply_append(call->reply, "", 1);
	return 0;
}

int op_is_domain_introduced(struct op_call *call)
{
	unsigned int domid;
	bool known;

	if (!op_parse_domid(wire_single_arg(call->req), &domid))
		return EINVAL;
	/* The store's own domain is always there, ring or not. */
	known = domid == DOMID_SELF || domid == call->srv->master_domid ||
		domains_is_introduced(call->srv->domains, domid);
	reply_append_str(call->reply, known ? "T" : "F");
	return 0;
}

int op_introduce(struct op_call *call)
{
	const char *argv[3];
	unsigned long gfn, port;
	unsigned int domid;
	int err;

	/* domid, gfn, event channel; extra strings are ignored (upstream). */
	if (wire_split(call->req, argv, 3) < 3 ||
	    !op_parse_domid(argv[0], &domid) || domid >= DOMAIN_ID_LIMIT ||
	    !wire_parse_uint(argv[1], ULONG_MAX, &gfn) ||
	    !wire_parse_uint(argv[2], UINT32_MAX, &port) || port == 0)
		return EINVAL;
	err = domains_introduce(call->srv->domains, domid, gfn,
				(unsigned int)port);
	return err ? err : op_ok(call);
}

/* The domid of RELEASE or RESUME: never the store's or the priv one. */
static bool parse_guest_domid(const struct op_call *call, unsigned int *domid)
{
	return op_parse_domid(wire_single_arg(call->req), domid) &&
	       *domid != call->srv->master_domid &&
	       *domid != call->srv->priv_domid;
}

int op_release(struct op_call *call)
{
	unsigned int domid;
	int err;

	if (!parse_guest_domid(call, &domid))
		return EINVAL;
	err = domains_release(call->srv->domains, domid);
	return err ? err : op_ok(call);
}

int op_resume(struct op_call *call)
{
	unsigned int domid;
	int err;

	if (!parse_guest_domid(call, &domid))
		return EINVAL;
	err = domains_resume(call->srv->domains, domid);
	return err ? err : op_ok(call);
}

int op_set_target(struct op_call *call)
{
	unsigned int ids[2];
	int err;

	if (!parse_domids(call, ids, 2))
		return EINVAL;
	err = domains_set_target(call->srv->domains, ids[0], ids[1]);
	return err ? err : op_ok(call);
}

int op_get_feature(struct op_call *call)
{
	unsigned int n = wire_count_strings(call->req), domid, features;
	int err;

	if (n == 0 || (n == 1 && call->req->hdr.len == 1 &&
		       call->req->payload[0] == '\0')) {
		/* No domid (or an empty one): the caller's own features. */
		features = domains_conn_features(call->srv->domains, call->c);
	} else {
		if (!call->c->who.privileged)
			return EACCES;
		if (n > 1 || !op_parse_domid(wire_single_arg(call->req),
					     &domid))
			return EINVAL;
		err = domains_get_features(call->srv->domains, domid,
					   &features);
		if (err)
			return err;
	}
	reply_printf(call->reply, "%u", features);
	reply_append(call->reply, "", 1);
	return 0;
}

int op_set_feature(struct op_call *call)
{
	const char *argv[2];
	unsigned long features;
	unsigned int domid;
	int err;

	if (wire_count_strings(call->req) != 2 ||
	    wire_split(call->req, argv, 2) != 2 ||
	    !op_parse_domid(argv[0], &domid) ||
	    !wire_parse_uint(argv[1], UINT32_MAX, &features))
		return EINVAL;
	err = domains_set_features(call->srv->domains, domid,
				   (unsigned int)features);
	return err ? err : op_ok(call);
}

/* ---- a domain is gone ---- */

struct forget {
	unsigned int domid;
	char **remove;		/* top-most nodes it owns, owned */
	size_t nremove;
	char **strip;		/* nodes whose entries name it, owned */
	size_t nstrip;
	bool nomem;
};

static bool push(char ***v, size_t *n, const char *path)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(**v));
	char *copy = strdup(path);

	if (!nv || !copy) {
		free(copy);
		if (nv)
			*v = nv;
		return false;
	}
	*v = nv;
	nv[(*n)++] = copy;
	return true;
}

static bool names_domid(const struct perms *p, unsigned int domid)
{
	for (unsigned int i = 1; i < p->n; i++)
		if (p->e[i].domid == domid)
			return true;
	return false;
}

static bool collect(struct node *n, void *arg)
{
	struct forget *f = arg;
	bool owned = n->perms->e[0].domid == f->domid;

	/* A special node is never deleted, only stripped. */
	if (owned && n->parent) {
		f->nomem |= !push(&f->remove, &f->nremove, n->path);
		return false;	/* its subtree goes with it */
	}
	if (owned || names_domid(n->perms, f->domid))
		f->nomem |= !push(&f->strip, &f->nstrip, n->path);
	return true;
}

/* p without the entries naming domid; an owner it was passes to owner. */
static struct perms *strip_perms(const struct perms *p, unsigned int domid,
				 unsigned int owner)
{
	struct perms *np = perms_alloc(p->n);
	unsigned int k = 1;

	if (!np)
		return NULL;
	np->e[0] = p->e[0];
	if (np->e[0].domid == domid)
		np->e[0].domid = owner;
	for (unsigned int i = 1; i < p->n; i++)
		if (p->e[i].domid != domid)
			np->e[k++] = p->e[i];
	np->n = k;
	return np;
}

void server_forget_domain(struct server *srv, unsigned int domid)
{
	static const char *const tops[] = {
		"/", "@introduceDomain", "@releaseDomain",
	};
	struct store *st = &srv->store;
	struct forget f = { .domid = domid };
	struct view_node vn;

	quota_forget_domain(&srv->quotas, domid);
	server_quotas_changed(srv);
	server_forget_watches(srv, domid);
	if (!store_domid_referenced(st, domid))
		return;
	for (size_t i = 0; i < sizeof(tops) / sizeof(tops[0]); i++) {
		struct node *top = store_lookup(st, tops[i]);

		if (top)
			store_walk(top, collect, &f);
	}
	if (f.nomem)
		log_error("domain %u: out of memory cleaning the tree; some "
			  "nodes still name it", domid);
	for (size_t i = 0; i < f.nstrip; i++) {
		struct perms *np;

		if (view_get(st, NULL, f.strip[i], &vn) &&
		    (np = strip_perms(vn.perms, domid, srv->priv_domid))) {
			view_set_perms(st, NULL, f.strip[i], np);
			perms_unref(np);
		}
		free(f.strip[i]);
	}
	for (size_t i = 0; i < f.nremove; i++) {
		if (view_get(st, NULL, f.remove[i], &vn)) {
			struct perms *p = perms_ref(vn.perms);

			if (view_remove(st, NULL, f.remove[i]) == 0)
				op_fire(srv, f.remove[i], true, p, NULL);
			perms_unref(p);
		}
		free(f.remove[i]);
	}
	free(f.strip);
	free(f.remove);
	log_info("domain %u: %zu nodes it owned deleted, %zu permission lists "
		 "updated", domid, f.nremove, f.nstrip);
}
