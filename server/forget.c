/*
 * A domain is gone: the nodes it owns go (their watches fire) and every
 * other node's permissions stop naming it, so that a new domain given the
 * same id inherits nothing (XSA-322).
 */
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "server/server.h"
#include "store/path.h"

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

static bool collect(struct node *n, const char *path, void *arg)
{
	struct forget *f = arg;
	bool owned = node_perms(n)->e[0].domid == f->domid;

	/* A special node is never deleted, only stripped. */
	if (owned && n->parent_id) {
		f->nomem |= !push(&f->remove, &f->nremove, path);
		return false;	/* its subtree goes with it */
	}
	if (owned || names_domid(node_perms(n), f->domid))
		f->nomem |= !push(&f->strip, &f->nstrip, path);
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

			server_removing(srv, f.remove[i]);
			if (view_remove(st, NULL, f.remove[i]) == 0)
				server_fire(srv, f.remove[i], true, p, NULL);
			perms_unref(p);
		}
		free(f.remove[i]);
	}
	free(f.strip);
	free(f.remove);
	log_info("domain %u: %zu nodes it owned deleted, %zu permission lists "
		 "updated", domid, f.nremove, f.nstrip);
}
