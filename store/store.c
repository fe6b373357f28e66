/*
 * The node tree.  A hash of full paths (index.h) gives O(1) lookup; each
 * node keeps its children on a list in creation order (upstream lists
 * children in that order too) with the byte size of their listing kept up
 * to date, so DIRECTORY is a walk of one list and its size check is free.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/path.h"
#include "store/store.h"

struct perms *perms_alloc(unsigned int n)
{
	struct perms *p = calloc(1, sizeof(*p) + n * sizeof(p->e[0]));

	if (p) {
		p->refs = 1;
		p->n = n;
	}
	return p;
}

struct perms *perms_ref(struct perms *p)
{
	p->refs++;
	return p;
}

void perms_unref(struct perms *p)
{
	if (p && --p->refs == 0)
		free(p);
}

bool perms_equal(const struct perms *a, const struct perms *b)
{
	return a->n == b->n &&
	       memcmp(a->e, b->e, a->n * sizeof(a->e[0])) == 0;
}

const char *node_name(const struct node *n)
{
	return n->parent ? path_basename(n->path) : n->path;
}

static struct node *node_new(const char *path, size_t len,
			     struct perms *perms)
{
	struct node *n = calloc(1, sizeof(*n) + len + 1);

	if (!n)
		return NULL;
	memcpy(n->path, path, len);
	n->path[len] = '\0';
	n->perms = perms_ref(perms);
	return n;
}

static void node_free(struct node *n)
{
	perms_unref(n->perms);
	free(n->value);
	free(n->listing);
	free(n);
}

static void forget_listing(struct node *n)
{
	free(n->listing);
	n->listing = NULL;
}

const char *store_listing(struct node *n)
{
	char *p;

	if (n->listing || !n->children_len)
		return n->listing;
	p = n->listing = malloc(n->children_len);
	if (!p)
		return NULL;
	for (struct node *c = n->first_child; c; c = c->next) {
		const char *name = node_name(c);
		size_t len = strlen(name) + 1;

		memcpy(p, name, len);
		p += len;
	}
	return n->listing;
}

static void link_child(struct store *s, struct node *parent, struct node *n)
{
	n->parent = parent;
	n->prev = parent->last_child;
	if (parent->last_child)
		parent->last_child->next = n;
	else
		parent->first_child = n;
	parent->last_child = n;
	parent->nchildren++;
	parent->children_len += (uint32_t)strlen(node_name(n)) + 1;
	forget_listing(parent);
	parent->cgen = ++s->gen;
}

static void unlink_child(struct store *s, struct node *n)
{
	struct node *parent = n->parent;

	if (n->prev)
		n->prev->next = n->next;
	else
		parent->first_child = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		parent->last_child = n->prev;
	parent->nchildren--;
	parent->children_len -= (uint32_t)strlen(node_name(n)) + 1;
	forget_listing(parent);
	parent->cgen = ++s->gen;
	n->parent = n->prev = n->next = NULL;
}

/* What a node costs its owner in memory (for the memory quota). */
static size_t node_bytes(const struct node *n)
{
	return sizeof(*n) + strlen(n->path) + 1 + n->value_len;
}

/* Count (delta 1) or uncount (-1) the domids n's perms name and charge
 * its bytes to the owner. */
static void account(struct store *s, const struct node *n,
		    const struct perms *p, int delta)
{
	struct store_domid_use *owner = &s->use[p->e[0].domid];

	owner->owned += (uint32_t)delta;
	if (delta > 0)
		owner->bytes += node_bytes(n);
	else
		owner->bytes -= node_bytes(n);
	for (unsigned int i = 1; i < p->n; i++)
		s->use[p->e[i].domid].named += (uint32_t)delta;
}

int store_reserve(struct store *s, size_t nodes)
{
	return index_reserve(&s->index, nodes);
}

bool store_domid_referenced(const struct store *s, uint32_t domid)
{
	return domid < STORE_DOMIDS &&
	       (s->use[domid].owned || s->use[domid].named);
}

static void tell_changed(const struct store *s, const struct node *n)
{
	if (s->observer)
		s->observer->changed(n, s->observer->arg);
}

/* Into room reserved in the index before. */
static void hash_insert(struct store *s, struct node *n)
{
	account(s, n, n->perms, 1);
	index_insert(&s->index, n);
}

static void hash_add(struct store *s, struct node *n)
{
	hash_insert(s, n);
	n->born = n->gen = n->cgen = ++s->gen;
}

void store_init(struct store *s, struct perms *root_perms)
{
	struct node *root;

	memset(s, 0, sizeof(*s));
	s->use = calloc(STORE_DOMIDS, sizeof(*s->use));
	root = node_new("/", 1, root_perms);
	if (!root || !s->use || index_init(&s->index) != 0 ||
	    index_reserve(&s->index, 1) != 0)
		abort();	/* start-up only: nothing can work without "/" */
	hash_add(s, root);
}

void store_destroy(struct store *s)
{
	struct node *n;
	size_t at = 0;

	while ((n = index_next(&s->index, &at)))
		node_free(n);
	index_free(&s->index);
	free(s->use);
	s->use = NULL;
}

static struct node *lookup_len(const struct store *s, const char *path,
			      size_t len)
{
	return index_find(&s->index, path, len);
}

struct node *store_lookup(const struct store *s, const char *path)
{
	return lookup_len(s, path, strlen(path));
}

struct node *store_create(struct store *s, const char *path,
			  struct perms *perms)
{
	size_t len = strlen(path), end;
	struct node *n = lookup_len(s, path, len), *parent, **chain;
	unsigned int missing = 0;

	if (n)
		return n;
	if (path_is_special(path)) {
		n = index_reserve(&s->index, 1) == 0 ? node_new(path, len, perms)
						      : NULL;
		if (!n)
			goto nomem;
		hash_add(s, n);
		tell_changed(s, n);
		return n;
	}

	/* Find the nearest existing ancestor ("/" always exists). */
	end = len;
	do {
		end = path_parent_len_n(path, end);
		missing++;
	} while (!(parent = lookup_len(s, path, end)));

	/* Allocate every missing node first, so a failure creates nothing. */
	if (index_reserve(&s->index, missing) != 0)
		goto nomem;
	chain = calloc(missing, sizeof(*chain));
	if (!chain)
		goto nomem;
	for (unsigned int i = 0; i < missing; i++) {
		size_t start = end == 1 ? 1 : end + 1;
		const char *slash = memchr(path + start, '/', len - start);

		end = slash ? (size_t)(slash - path) : len;
		chain[i] = node_new(path, end, perms);
		if (!chain[i]) {
			while (i--)
				node_free(chain[i]);
			free(chain);
			goto nomem;
		}
	}
	for (unsigned int i = 0; i < missing; i++) {
		hash_add(s, chain[i]);
		link_child(s, parent, chain[i]);
		tell_changed(s, chain[i]);
		parent = chain[i];
	}
	n = chain[missing - 1];
	free(chain);
	return n;

nomem:
	errno = ENOMEM;
	return NULL;
}

/* A node's own copy of a value: false (errno ENOMEM) without memory.
 * An empty value is NULL. */
static bool copy_value(const void *data, size_t len, char **copy)
{
	*copy = NULL;
	if (!len)
		return true;
	*copy = malloc(len);
	if (!*copy) {
		errno = ENOMEM;
		return false;
	}
	memcpy(*copy, data, len);
	return true;
}

struct node *store_write(struct store *s, const char *path,
			 struct perms *perms, const void *data, size_t len)
{
	char *copy;
	struct node *n;

	if (!copy_value(data, len, &copy))
		return NULL;
	n = store_create(s, path, perms);
	if (!n) {
		free(copy);
		return NULL;
	}
	s->use[n->perms->e[0].domid].bytes -= n->value_len;
	free(n->value);
	n->value = copy;
	n->value_len = (uint32_t)len;
	s->use[n->perms->e[0].domid].bytes += n->value_len;
	n->gen = ++s->gen;
	tell_changed(s, n);
	return n;
}

void store_set_perms(struct store *s, struct node *n, struct perms *perms)
{
	perms_ref(perms);
	account(s, n, n->perms, -1);
	account(s, n, perms, 1);
	perms_unref(n->perms);
	n->perms = perms;
	n->gen = ++s->gen;
	tell_changed(s, n);
}

/* Deepest first descendant of n (n itself when it has no children). */
static struct node *deepest_first(struct node *n)
{
	while (n->first_child)
		n = n->first_child;
	return n;
}

int store_remove(struct store *s, struct node *n,
		 void (*each)(struct node *n, void *arg), void *arg)
{
	struct node *top = n, *cur, *next;

	if (!n->parent && !path_is_special(n->path))
		return -EINVAL;

	/* Post-order walk: free a node once all of its children are gone. */
	cur = deepest_first(top);
	for (;;) {
		bool last = cur == top;

		next = last ? NULL : (cur->next ? deepest_first(cur->next)
						: cur->parent);
		if (each)
			each(cur, arg);
		if (s->observer)
			s->observer->removed(cur, s->observer->arg);
		if (cur->parent)
			unlink_child(s, cur);
		index_remove(&s->index, cur);
		account(s, cur, cur->perms, -1);
		node_free(cur);
		if (last)
			break;
		cur = next;
	}
	return 0;
}

struct node *store_restore(struct store *s, const char *path,
			   struct perms *perms, const void *data, size_t len,
			   uint64_t born, uint64_t gen, uint64_t cgen,
			   struct node **hint)
{
	size_t plen = strlen(path);
	bool special = path_is_special(path);
	struct node *n = lookup_len(s, path, plen);
	struct node *parent = NULL;
	bool existed = n != NULL;
	char *copy;

	/* Only the root and the special nodes exist before their turn: any
	 * other twice is a damaged file. */
	if (n && plen > 1 && !special)
		goto invalid;
	if (!special) {
		size_t parent_len;

		if (!path_is_valid(path))
			goto invalid;
		parent_len = plen > 1 ? path_parent_len_n(path, plen) : 0;
		/* Saved in creation order, siblings mostly come together. */
		if (parent_len && hint && *hint &&
		    node_has_path(*hint, path, parent_len))
			parent = *hint;
		else if (parent_len &&
			 !(parent = lookup_len(s, path, parent_len)))
			goto invalid;
		if (hint)
			*hint = parent;
	}
	if ((!n && index_reserve(&s->index, 1) != 0) ||
	    !copy_value(data, len, &copy)) {
		errno = ENOMEM;
		return NULL;
	}
	if (n) {
		/* Only "/" exists before it is restored. */
		account(s, n, n->perms, -1);
		perms_unref(n->perms);
		n->perms = perms_ref(perms);
		free(n->value);
	} else {
		n = node_new(path, plen, perms);
		if (!n) {
			free(copy);
			errno = ENOMEM;
			return NULL;
		}
		if (parent) {
			/* The parent keeps its saved generations. */
			uint64_t cgen_saved = parent->cgen, gen_saved = s->gen;

			link_child(s, parent, n);
			parent->cgen = cgen_saved;
			s->gen = gen_saved;
		}
	}
	n->value = copy;
	n->value_len = (uint32_t)len;
	if (existed)
		account(s, n, n->perms, 1);
	else
		hash_insert(s, n);
	n->born = born;
	n->gen = gen ? gen : born;
	n->cgen = cgen ? cgen : born;
	if (born > s->gen)
		s->gen = born;
	if (node_generation(n) > s->gen)
		s->gen = node_generation(n);
	return n;

invalid:
	errno = EINVAL;
	return NULL;
}

void store_walk(struct node *n, bool (*fn)(struct node *n, void *arg),
		void *arg)
{
	struct node *top = n, *cur = n;

	while (cur) {
		if (fn(cur, arg) && cur->first_child) {
			cur = cur->first_child;
			continue;
		}
		/* Next sibling, or the sibling of the nearest ancestor. */
		while (cur != top && !cur->next)
			cur = cur->parent;
		cur = cur == top ? NULL : cur->next;
	}
}

void store_each(const struct store *s,
		void (*fn)(const struct node *n, void *arg), void *arg)
{
	const struct node *n;
	size_t at = 0;

	while ((n = index_next(&s->index, &at)))
		fn(n, arg);
}

struct check_state {
	const struct store *s;
	void (*report)(const char *what, const char *path, void *arg);
	void *arg;
	unsigned int problems;
	unsigned long reached;
};

static void problem(struct check_state *st, const char *what,
		    const char *path)
{
	st->problems++;
	if (st->report)
		st->report(what, path, st->arg);
}

static bool check_node(struct node *n, void *arg)
{
	struct check_state *st = arg;
	uint32_t count = 0, bytes = 0;
	bool stale = false;

	st->reached++;
	if (lookup_len(st->s, n->path, strlen(n->path)) != n)
		problem(st, "node missing from the path index", n->path);
	for (struct node *c = n->first_child; c; c = c->next) {
		const char *name = node_name(c);
		size_t len = strlen(name) + 1;

		if (c->parent != n)
			problem(st, "child with a wrong parent", c->path);
		if (!c->next && c != n->last_child)
			problem(st, "broken child list", n->path);
		if (n->listing && bytes + len <= n->children_len &&
		    memcmp(n->listing + bytes, name, len) != 0)
			stale = true;
		count++;
		bytes += (uint32_t)len;
	}
	if (count != n->nchildren || bytes != n->children_len)
		problem(st, "child count or listing size is wrong", n->path);
	if (stale)
		problem(st, "the cached listing differs from the children",
			n->path);
	if (!n->perms || n->perms->n == 0)
		problem(st, "node without permissions", n->path);
	if (node_generation(n) > st->s->gen)
		problem(st, "generation from the future", n->path);
	return true;
}

/* The per-domid counts the quotas rely on, recounted from the nodes. */
static void check_domid_use(const struct store *s, struct check_state *st)
{
	struct store_domid_use *count = calloc(STORE_DOMIDS, sizeof(*count));
	const struct node *n;
	size_t at = 0;
	char what[64];

	if (!count) {
		problem(st, "no memory to recount the domains' nodes", "/");
		return;
	}
	while ((n = index_next(&s->index, &at))) {
		count[n->perms->e[0].domid].owned++;
		count[n->perms->e[0].domid].bytes += node_bytes(n);
		for (unsigned int i = 1; i < n->perms->n; i++)
			count[n->perms->e[i].domid].named++;
	}
	for (unsigned int d = 0; d < STORE_DOMIDS; d++) {
		if (count[d].owned == s->use[d].owned &&
		    count[d].named == s->use[d].named &&
		    count[d].bytes == s->use[d].bytes)
			continue;
		snprintf(what, sizeof(what), "node accounting of domain %u "
			 "is wrong", d);
		problem(st, what, "/");
	}
	free(count);
}

unsigned int store_check(const struct store *s,
			 void (*report)(const char *what, const char *path,
					void *arg),
			 void *arg)
{
	struct check_state st = { .s = s, .report = report, .arg = arg };
	struct node *n;
	unsigned long specials = 0;
	size_t at = 0;

	while ((n = index_next(&s->index, &at))) {
		if (!n->parent && path_is_special(n->path)) {
			specials++;
			check_node(n, &st);
		} else if (!n->parent && strcmp(n->path, "/") != 0) {
			problem(&st, "node without a parent", n->path);
		}
	}
	n = lookup_len(s, "/", 1);
	if (!n)
		problem(&st, "no root node", "/");
	else
		store_walk(n, check_node, &st);
	if (st.reached != store_count(s))
		problem(&st, "nodes unreachable from the root", "/");
	check_domid_use(s, &st);
	return st.problems;
}
