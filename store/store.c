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
#include "store/pool.h"
#include "store/slab.h"
#include "store/store.h"

struct slot_table perms_table = { .limit = 1u << NODE_PERMS_BITS };

struct perms *perms_alloc(unsigned int n)
{
	struct perms *p = calloc(1, sizeof(*p) + n * sizeof(p->e[0]));

	if (!p)
		return NULL;
	if (!(p->slot = slot_take(&perms_table, p))) {
		free(p);
		errno = ENOMEM;
		return NULL;
	}
	p->refs = 1;
	p->n = n;
	return p;
}

struct perms *perms_ref(struct perms *p)
{
	p->refs++;
	return p;
}

void perms_unref(struct perms *p)
{
	if (p && --p->refs == 0) {
		slot_give(&perms_table, p->slot);
		free(p);
	}
}

bool perms_equal(const struct perms *a, const struct perms *b)
{
	return a->n == b->n &&
	       memcmp(a->e, b->e, a->n * sizeof(a->e[0])) == 0;
}

size_t node_path(const struct node *n, char *buf, size_t size)
{
	const struct node *m;
	size_t len = 0, at;

	for (m = n; m->parent_id; m = node_parent(m))
		len += node_name_len(m) + 1;
	if (!len) {
		/* "/" or a special node: its name is its path. */
		len = node_name_len(m);
		if (len < size)
			memcpy(buf, node_name(m), len + 1);
		return len;
	}
	if (len >= size) {
		if (size)
			buf[0] = '\0';
		return len;
	}
	buf[len] = '\0';
	at = len;
	for (m = n; m->parent_id; m = node_parent(m)) {
		const struct name_entry *e = name_entry(node_name_id(m));

		at -= e->len;
		memcpy(buf + at, e->s, e->len);
		buf[--at] = '/';
	}
	return len;
}

bool node_has_path(const struct node *n, const char *path, size_t len)
{
	for (;;) {
		const struct node *parent = node_parent(n);
		const struct name_entry *e = name_entry(node_name_id(n));

		if (!parent)
			return len == e->len && memcmp(path, e->s, len) == 0;
		/* "/" then the name, at the end of what is left. */
		if (len < (size_t)e->len + 1)
			return false;
		len -= e->len;
		if (path[len - 1] != '/' ||
		    memcmp(path + len, e->s, e->len) != 0)
			return false;
		len--;
		if (!parent->parent_id)
			return len == 0;	/* the parent is "/" */
		n = parent;
	}
}

/*
 * A node of the given name (len bytes) with room for a value of
 * value_len bytes, not linked anywhere yet; NULL (errno ENOMEM) when
 * memory runs out, EINVAL for a value longer than a node holds.
 */
static struct node *node_new(const char *name_s, size_t len,
			     struct perms *perms, size_t value_len)
{
	struct node *n;
	uint32_t name;

	if (value_len > NODE_VALUE_MAX || len >= NODE_PATH_BUF) {
		errno = EINVAL;
		return NULL;
	}
	n = pool_alloc();
	if (!n)
		return NULL;
	if (value_len && !(n->value = slab_alloc(value_len))) {
		pool_free(n);
		errno = ENOMEM;
		return NULL;
	}
	if (!(name = name_intern(name_s, len))) {
		slab_free(n->value);
		pool_free(n);
		errno = ENOMEM;
		return NULL;
	}
	n->name_id = name & ((1u << NAMES_ID_BITS) - 1);	/* below it */
	node_set_perms_slot(n, perms_ref(perms)->slot);
	return n;
}

static void node_free(struct node *n)
{
	perms_unref(node_perms(n));
	name_unref(node_name_id(n));
	slab_free(n->value);
	pool_free(n);
}

/* A new value of len bytes for n: false with errno ENOMEM without
 * memory, or EINVAL when longer than a node holds; n unchanged. */
static bool set_value(struct node *n, const void *data, size_t len)
{
	if (len > NODE_VALUE_MAX) {
		errno = EINVAL;
		return false;
	}
	if (len != node_value_len(n)) {
		slab_ref r = 0;

		if (!len)
			slab_free(n->value);
		else if (!(r = n->value ? slab_resize(n->value, len)
					: slab_alloc(len))) {
			errno = ENOMEM;
			return false;
		}
		n->value = r;
	}
	if (len)
		memcpy(slab_ptr(n->value), data, len);
	return true;
}

/* The value of a node made with room for it (node_new). */
static void put_value(struct node *n, const void *data, size_t len)
{
	if (len)	/* node_new made its block len bytes long */
		memcpy(slab_ptr(n->value), data, len);
}

static void forget_listing(struct store *s, const struct node *n)
{
	struct store_listing *l = &s->listings[node_id(n) % STORE_LISTINGS];

	if (l->id == node_id(n)) {
		free(l->names);
		l->names = NULL;
		l->id = 0;
	}
}

const char *store_listing(struct store *s, const struct node *n,
			  size_t *len)
{
	struct store_listing *l = &s->listings[node_id(n) % STORE_LISTINGS];
	char *p;

	if (l->id == node_id(n)) {
		*len = l->len;
		return l->names;
	}
	*len = node_children_len(n, SIZE_MAX);
	/* A listing's length fits its 32 bits: a record's names' are less
	 * than a page each, and there are fewer than 2^26 records (pool.c). */
	if (!*len || !(p = malloc(*len)))
		return NULL;
	free(l->names);
	l->names = p;
	l->len = (uint32_t)*len;
	l->id = node_id(n);
	for (struct node *c = node_first_child(n); c; c = node_next(c)) {
		const struct name_entry *e = name_entry(node_name_id(c));

		memcpy(p, e->s, e->len + 1);
		p += e->len + 1;
	}
	return l->names;
}

/* A new generation for a change of n (what: stamps.h), stamped while
 * someone holds the store. */
static void stamp(struct store *s, struct node *n, unsigned int what)
{
	++s->gen;
	if (s->oldest)
		stamps_put(&s->stamps, node_id(n), s->gen, what,
			   s->oldest->since);
}

void store_hold(struct store *s, struct store_hold *h)
{
	h->s = s;
	h->since = s->gen;
	h->next = NULL;
	h->prev = s->newest;
	if (s->newest)
		s->newest->next = h;
	else
		s->oldest = h;
	s->newest = h;
}

void store_release(struct store_hold *h)
{
	struct store *s = h->s;

	if (!s)
		return;
	if (h->prev)
		h->prev->next = h->next;
	else
		s->oldest = h->next;
	if (h->next)
		h->next->prev = h->prev;
	else
		s->newest = h->prev;
	h->s = NULL;
	if (!s->oldest)
		stamps_clear(&s->stamps);
}

bool node_changed_since(const struct store *s, const struct node *n,
			uint64_t since, unsigned int what)
{
	struct stamp e;

	if (s->stamps.lost)
		return true;
	e = stamps_get(&s->stamps, node_id(n));
	return (what == STAMP_LIST ? e.cgen : e.gen) > since;
}

/* n becomes parent's last child (store.h: the parent names its last
 * child, whose next_id names the first). */
static void link_child(struct store *s, struct node *parent, struct node *n)
{
	struct node *last = node_last_child(parent);

	n->parent_id = node_id(parent);
	if (last) {
		n->next_id = last->next_id;
		last->next_id = node_id(n);
	} else {
		n->next_id = node_id(n);	/* a circle of one */
	}
	parent->child_id = node_id(n);
	forget_listing(s, parent);
	stamp(s, parent, STAMP_LIST);
}

static void unlink_child(struct store *s, struct node *n)
{
	struct node *parent = node_parent(n), *last = node_last_child(parent);
	struct node *prev = last;

	/* The sibling before n: the last one when n is the first, else
	 * found walking from the first. */
	while (prev->next_id != node_id(n))
		prev = pool_node(prev->next_id);
	if (prev == n) {
		parent->child_id = 0;		/* its only child */
	} else {
		prev->next_id = n->next_id;
		if (n == last)
			parent->child_id = node_id(prev);
	}
	forget_listing(s, parent);
	stamp(s, parent, STAMP_LIST);
	n->parent_id = n->next_id = 0;
}

/* The special nodes hang off the store, linked by their next_id (a
 * handful: a removal walks them). */
static void link_special(struct store *s, struct node *n)
{
	n->next_id = s->specials_id;
	s->specials_id = node_id(n);
}

static void unlink_special(struct store *s, struct node *n)
{
	struct node *prev = NULL;

	for (uint32_t id = s->specials_id; id != node_id(n);
	     id = prev->next_id)
		prev = pool_node(id);
	if (prev)
		prev->next_id = n->next_id;
	else
		s->specials_id = n->next_id;
	n->next_id = 0;
}

/* What a node costs its owner in memory (for the memory quota). */
static size_t node_bytes(const struct node *n)
{
	return sizeof(*n) + node_name_len(n) + 1 + node_value_len(n);
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
	for (unsigned int i = 0; i < p->n; i++) {
		uint32_t d = p->e[i].domid;

		if (i)
			s->use[d].named += (uint32_t)delta;
		s->charged[d / 64] |= 1ull << (d % 64);
	}
}

int store_reserve(struct store *s, size_t nodes)
{
	return index_reserve(&s->index, nodes) ||
	       pool_reserve(nodes) ? -1 : 0;
}

bool store_domid_referenced(const struct store *s, uint32_t domid)
{
	return domid < STORE_DOMIDS &&
	       (s->use[domid].owned || s->use[domid].named);
}

/* The observer told of n, whose path (len bytes) the caller holds (the
 * one it was found by); born: as store_observer's. */
static void tell_changed_at(const struct store *s, const struct node *n,
			    const char *path, size_t len, uint64_t born)
{
	if (s->observer)
		s->observer->changed(n, path, len, born, s->observer->arg);
}

/* The same, the path built from n's ancestors. */
static void tell_changed(const struct store *s, const struct node *n,
			 uint64_t born)
{
	char path[NODE_PATH_BUF];

	if (s->observer)
		tell_changed_at(s, n, path, node_path(n, path, sizeof(path)),
				born);
}

/* Into room reserved in the index before. */
static void hash_insert(struct store *s, struct node *n, const char *path,
			size_t len)
{
	account(s, n, node_perms(n), 1);
	index_insert(&s->index, n, path, len);
}

/* A new node into the index: the generation it is born with. */
static uint64_t hash_add(struct store *s, struct node *n, const char *path,
			 size_t len)
{
	hash_insert(s, n, path, len);
	stamp(s, n, STAMP_NODE | STAMP_LIST);
	return s->gen;
}

void store_init(struct store *s, struct perms *root_perms)
{
	struct node *root;

	memset(s, 0, sizeof(*s));
	s->use = calloc(STORE_DOMIDS, sizeof(*s->use));
	s->charged = calloc(STORE_DOMIDS / 64, sizeof(*s->charged));
	root = node_new("/", 1, root_perms, 0);
	if (!root || !s->use || !s->charged || index_init(&s->index) != 0 ||
	    index_reserve(&s->index, 1) != 0)
		abort();	/* start-up only: nothing can work without "/" */
	hash_add(s, root, "/", 1);
}

void store_destroy(struct store *s)
{
	struct node *n;
	size_t at = 0;

	while ((n = index_next(&s->index, &at)))
		node_free(n);
	index_free(&s->index);
	free(s->misordered);
	s->misordered = NULL;
	s->nmisordered = s->misordered_cap = 0;
	free(s->restored_born);
	s->restored_born = NULL;
	s->restored_cap = 0;
	for (unsigned int i = 0; i < STORE_LISTINGS; i++)
		free(s->listings[i].names);
	memset(s->listings, 0, sizeof(s->listings));
	free(s->use);
	free(s->charged);
	s->use = NULL;
	s->charged = NULL;
	/* Holders that outlive the store hold nothing. */
	while (s->oldest)
		store_release(s->oldest);
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

/*
 * Create path (len bytes) and its missing ancestors; the node itself
 * holds the value_len bytes at data (the ancestors nothing).  The node
 * must not exist.  NULL with errno ENOMEM, nothing created, when memory
 * runs out (EINVAL: a path or value longer than a node holds).
 */
static struct node *create(struct store *s, const char *path, size_t len,
			   struct perms *perms, const void *data,
			   size_t value_len)
{
	struct node *n, *parent;
	struct made {
		struct node *n;
		size_t path_len;
	} *chain;
	unsigned int missing = 0;
	uint64_t born;
	size_t end;

	if (len >= NODE_PATH_BUF) {
		errno = EINVAL;	/* longer than any valid path */
		return NULL;
	}
	if (path_is_special(path)) {
		if (index_reserve(&s->index, 1) != 0)
			goto nomem;
		n = node_new(path, len, perms, value_len);
		if (!n)
			return NULL;	/* errno: node_new's */
		put_value(n, data, value_len);
		born = hash_add(s, n, path, len);
		link_special(s, n);
		tell_changed(s, n, born);
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
		bool last = i + 1 == missing;

		end = slash ? (size_t)(slash - path) : len;
		chain[i].n = node_new(path + start, end - start, perms,
				      last ? value_len : 0);
		chain[i].path_len = end;
		if (!chain[i].n) {
			int err = errno;	/* node_new's */

			while (i--)
				node_free(chain[i].n);
			free(chain);
			errno = err;
			return NULL;
		}
		if (last)
			put_value(chain[i].n, data, value_len);
	}
	for (unsigned int i = 0; i < missing; i++) {
		/* Each node's path is a prefix of the one asked for. */
		born = hash_add(s, chain[i].n, path, chain[i].path_len);
		link_child(s, parent, chain[i].n);
		tell_changed(s, chain[i].n, born);
		parent = chain[i].n;
	}
	n = chain[missing - 1].n;
	free(chain);
	return n;

nomem:
	errno = ENOMEM;
	return NULL;
}

struct node *store_create(struct store *s, const char *path,
			  struct perms *perms)
{
	size_t len = strlen(path);
	struct node *n = lookup_len(s, path, len);

	return n ? n : create(s, path, len, perms, NULL, 0);
}

struct node *store_write(struct store *s, const char *path,
			 struct perms *perms, const void *data, size_t len)
{
	size_t plen = strlen(path);
	struct node *n = lookup_len(s, path, plen);

	if (!n)		/* stamped as it is made (hash_add) */
		return create(s, path, plen, perms, data, len);
	account(s, n, node_perms(n), -1);
	if (!set_value(n, data, len)) {
		account(s, n, node_perms(n), 1);
		return NULL;
	}
	account(s, n, node_perms(n), 1);
	stamp(s, n, STAMP_NODE);
	tell_changed_at(s, n, path, plen, 0);
	return n;
}

struct node *store_prepare(const char *path, struct perms *perms,
			   const void *data, size_t len)
{
	/* Named as store_put's node would be: a special node and the root
	 * by their whole path, others by their last component. */
	const char *name = path_is_special(path) || !strcmp(path, "/")
				   ? path
				   : path_basename(path);
	struct node *n = node_new(name, strlen(name), perms, len);

	if (n)
		put_value(n, data, len);
	return n;
}

void store_unprepare(struct node *prep)
{
	node_free(prep);
}

struct node *store_put(struct store *s, const char *path, struct node *prep)
{
	size_t plen = strlen(path);
	struct node *n = lookup_len(s, path, plen), *parent;
	slab_ref old;
	uint64_t born;

	if (!n) {
		parent = path_is_special(path)
				 ? NULL
				 : lookup_len(s, path,
					      path_parent_len_n(path, plen));
		if (!parent && !path_is_special(path)) {
			/* Not as promised: make the ancestors, which may
			 * fail (NULL, ENOMEM) after all. */
			n = create(s, path, plen, node_perms(prep),
				   node_value(prep), node_value_len(prep));
			node_free(prep);
			return n;
		}
		born = hash_add(s, prep, path, plen);
		if (parent)
			link_child(s, parent, prep);
		else
			link_special(s, prep);
		tell_changed_at(s, prep, path, plen, born);
		return prep;
	}
	/* The live node takes the prepared value; the record goes, with
	 * the old value. */
	account(s, n, node_perms(n), -1);
	old = n->value;
	n->value = prep->value;
	/* The record now holds n's old block, freed with it. */
	prep->value = old;
	account(s, n, node_perms(n), 1);
	node_free(prep);
	stamp(s, n, STAMP_NODE);
	tell_changed_at(s, n, path, plen, 0);
	return n;
}

void store_set_perms(struct store *s, struct node *n, struct perms *perms)
{
	perms_ref(perms);
	account(s, n, node_perms(n), -1);
	account(s, n, perms, 1);
	perms_unref(node_perms(n));
	node_set_perms_slot(n, perms->slot);
	stamp(s, n, STAMP_NODE);
	tell_changed(s, n, 0);
}

/* Deepest first descendant of n (n itself when it has no children). */
static struct node *deepest_first(struct node *n)
{
	while (n->child_id)
		n = node_first_child(n);
	return n;
}

int store_remove(struct store *s, struct node *n,
		 void (*each)(struct node *n, const char *path, void *arg),
		 void *arg)
{
	struct node *top = n, *cur, *next;
	char path[NODE_PATH_BUF];

	if (!n->parent_id && node_name(n)[0] != '@')
		return -EINVAL;		/* the root */

	/* Post-order walk: free a node once all of its children are gone. */
	cur = deepest_first(top);
	for (;;) {
		bool last = cur == top;
		size_t len;

		next = last ? NULL : node_next(cur) ? deepest_first(node_next(cur))
						    : node_parent(cur);
		len = node_path(cur, path, sizeof(path));
		if (each)
			each(cur, path, arg);
		if (s->observer)
			s->observer->removed(cur, path, s->observer->arg);
		if (cur->parent_id)
			unlink_child(s, cur);
		else
			unlink_special(s, cur);
		index_remove(&s->index, cur, path, len);
		account(s, cur, node_perms(cur), -1);
		forget_listing(s, cur);
		node_free(cur);
		if (last)
			break;
		cur = next;
	}
	return 0;
}

/*
 * The node whose path is the len bytes at path, when it is near: last or
 * one of its ancestors (the parent of a node restored in creation order
 * is mostly one of them).  Compares names, no hashing; NULL when it is
 * not one of them.
 */
static struct node *near_ancestor(struct node *last, const char *path,
				  size_t len)
{
	size_t at = 0;

	for (struct node *m = last; m->parent_id; m = node_parent(m))
		at += node_name_len(m) + 1;
	/* at: the length of last's path (0 for "/"). */
	for (struct node *m = last; m; m = node_parent(m)) {
		if (at == len || (at == 0 && len == 1))
			return node_has_path(m, path, len) ? m : NULL;
		if (at < len || !m->parent_id)
			return NULL;
		at -= node_name_len(m) + 1;
	}
	return NULL;
}

/* The generation restored node n was born with (0: not restored). */
static uint64_t restored_born(const struct store *s, const struct node *n)
{
	uint32_t id = node_id(n);

	return id < s->restored_cap ? s->restored_born[id] : 0;
}

/* Note that node id was born at born, until store_restore_done: false
 * (errno ENOMEM) without memory for it. */
static bool note_born(struct store *s, uint32_t id, uint64_t born)
{
	if (id >= s->restored_cap) {
		size_t cap = s->restored_cap ? s->restored_cap : 1024;
		uint64_t *v;

		while (cap <= id)
			cap *= 2;
		v = realloc(s->restored_born, cap * sizeof(*v));
		if (!v) {
			errno = ENOMEM;
			return false;
		}
		memset(v + s->restored_cap, 0,
		       (cap - s->restored_cap) * sizeof(*v));
		s->restored_born = v;
		s->restored_cap = cap;
	}
	s->restored_born[id] = born;
	return true;
}

/* A child born at born is to be parent's last: unless it is younger than
 * the last one, note that parent's children need putting in order.
 * false with errno ENOMEM without memory for the note, EINVAL when the
 * last one was born at the same generation (a damaged file). */
static bool note_order(struct store *s, const struct node *parent,
		       uint64_t born)
{
	const struct node *last = node_last_child(parent);
	uint64_t last_born = last ? restored_born(s, last) : 0;

	if (!last || last_born < born)
		return true;
	if (last_born == born) {
		errno = EINVAL;	/* two nodes of one generation */
		return false;
	}
	if (s->nmisordered &&
	    s->misordered[s->nmisordered - 1] == node_id(parent))
		return true;	/* noted just before */
	if (s->nmisordered == s->misordered_cap) {
		size_t cap = s->misordered_cap ? 2 * s->misordered_cap : 16;
		uint32_t *v = realloc(s->misordered, cap * sizeof(*v));

		if (!v) {
			errno = ENOMEM;
			return false;
		}
		s->misordered = v;
		s->misordered_cap = cap;
	}
	s->misordered[s->nmisordered++] = node_id(parent);
	return true;
}

/* A child and when it was born, to sort siblings by birth. */
struct birth {
	uint64_t born;
	uint32_t id;
};

static int by_birth(const void *a, const void *b)
{
	uint64_t x = ((const struct birth *)a)->born;
	uint64_t y = ((const struct birth *)b)->born;

	return x < y ? -1 : x > y;
}

/* n's children, put in order of birth: 0, or -1 with errno ENOMEM, or
 * EINVAL when two were born at one generation (a damaged file). */
static int order_children(struct store *s, struct node *n)
{
	uint32_t k = node_count_children(n);
	struct birth *v = malloc((k ? k : 1) * sizeof(*v));

	if (!v) {
		errno = ENOMEM;
		return -1;
	}
	k = 0;
	for (struct node *c = node_first_child(n); c; c = node_next(c))
		v[k++] = (struct birth){ restored_born(s, c), node_id(c) };
	qsort(v, k, sizeof(*v), by_birth);
	for (uint32_t i = 1; i < k; i++) {
		if (v[i - 1].born == v[i].born) {
			free(v);
			errno = EINVAL;
			return -1;
		}
	}
	n->child_id = k ? v[k - 1].id : 0;
	for (uint32_t i = 0; i < k; i++)
		pool_node(v[i].id)->next_id = v[(i + 1) % k].id;
	forget_listing(s, n);
	free(v);
	return 0;
}

static int by_id(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

void store_prefetch(const struct store *s, const char *path, size_t len)
{
	index_prefetch(&s->index, path, len);
}

int store_restore_done(struct store *s)
{
	/* A parent may have been noted more than once: each is put in order
	 * once. */
	if (s->nmisordered)	/* qsort's array may not be NULL */
		qsort(s->misordered, s->nmisordered, sizeof(*s->misordered),
		      by_id);
	while (s->nmisordered) {
		uint32_t id = s->misordered[--s->nmisordered];

		if (s->nmisordered && s->misordered[s->nmisordered - 1] == id)
			continue;
		if (order_children(s, pool_node(id)) != 0) {
			s->nmisordered++;
			return -1;
		}
	}
	free(s->misordered);
	s->misordered = NULL;
	s->misordered_cap = 0;
	/* Births matter no more: siblings are in order now. */
	free(s->restored_born);
	s->restored_born = NULL;
	s->restored_cap = 0;
	return 0;
}

struct node *store_restore(struct store *s, const char *path,
			   struct perms *perms, const void *data, size_t len,
			   uint64_t born, struct node **hint)
{
	size_t plen = strlen(path);
	bool special = path_is_special(path);
	struct node *n = NULL, *parent = NULL;
	size_t parent_len = 0, start = 0;	/* start: where the name begins */

	if (born == 0 || born > NODE_GEN_MAX)
		goto invalid;	/* none of ours: a damaged file */
	if (special || plen == 1) {
		/* Only these may exist already (start-up made them). */
		n = lookup_len(s, path, plen);
	} else {
		parent_len = path_parent_len_n(path, plen);
		if (!hint || !*hint ||
		    !(parent = near_ancestor(*hint, path, parent_len)))
			parent = lookup_len(s, path, parent_len);
		/* A parent found has a node's path, valid: only the name after
		 * it is left to check, not the whole path (a load's hot loop). */
		start = parent_len == 1 ? 1 : parent_len + 1;
		if (!parent ? !path_is_valid(path) :
		    path[0] != '/' || plen > PATH_ABS_MAX ||
		    !path_name_is_valid(path + start, plen - start))
			goto invalid;
		if (!parent) {
			errno = ENOENT;
			return NULL;
		}
	}
	if (n) {
		if (!note_born(s, node_id(n), born))
			return NULL;
		account(s, n, node_perms(n), -1);
		if (!set_value(n, data, len)) {
			account(s, n, node_perms(n), 1);
			return NULL;
		}
		perms_unref(node_perms(n));
		node_set_perms_slot(n, perms_ref(perms)->slot);
		account(s, n, node_perms(n), 1);
	} else {
		if (!special && plen == 1)
			goto invalid;	/* no root: cannot happen */
		if (index_reserve(&s->index, 1) != 0 ||
		    !(n = node_new(path + start, plen - start, perms, len))) {
			errno = ENOMEM;
			return NULL;
		}
		put_value(n, data, len);
		if (!note_born(s, node_id(n), born) ||
		    (parent && !note_order(s, parent, born))) {
			int err = errno;

			node_free(n);
			errno = err;
			return NULL;
		}
		/* The check that the path is new and the insert, in one probe:
		 * a path twice is a damaged file. */
		if (index_insert_unique(&s->index, n, path, plen)) {
			node_free(n);
			goto invalid;
		}
		account(s, n, node_perms(n), 1);
		if (!parent)
			link_special(s, n);
		if (parent) {
			/* Putting back is no change: the counter stays. */
			uint64_t gen_saved = s->gen;

			link_child(s, parent, n);
			s->gen = gen_saved;
		}
	}
	if (hint)
		*hint = n;
	if (born > s->gen)
		s->gen = born;
	return n;

invalid:
	errno = EINVAL;
	return NULL;
}

size_t node_path_down(char *path, size_t len, const struct node *n)
{
	const struct name_entry *e = name_entry(node_name_id(n));

	if (len > 1)
		path[len++] = '/';
	if (len + e->len >= NODE_PATH_BUF)
		abort();	/* deeper than any valid path: a store bug */
	memcpy(path + len, e->s, e->len + 1);
	return len + e->len;
}

/* n's permission list, or NULL when its slot holds none (a damaged
 * record). */
static const struct perms *checked_perms(const struct node *n)
{
	return slot_holds(&perms_table, node_perms_slot(n)) ? node_perms(n)
							      : NULL;
}

size_t node_path_up(char *path, size_t len, const struct node *n)
{
	len -= node_name_len(n);
	if (len > 1)
		len--;
	path[len] = '\0';
	return len;
}

struct each_state {
	void (*fn)(const struct node *n, const char *path, void *arg);
	void *arg;
};

static bool each_node(struct node *n, const char *path, void *arg)
{
	const struct each_state *st = arg;

	st->fn(n, path, st->arg);
	return true;
}

void store_walk(struct node *n,
		bool (*fn)(struct node *n, const char *path, void *arg),
		void *arg)
{
	struct node *top = n, *cur = n;
	char path[NODE_PATH_BUF];
	size_t len = node_path(top, path, sizeof(path));

	/* The path follows the walk: a name added going down, taken off
	 * going up or across. */
	while (cur) {
		if (fn(cur, path, arg) && cur->child_id) {
			cur = node_first_child(cur);
			len = node_path_down(path, len, cur);
			continue;
		}
		while (cur != top && !node_next(cur)) {
			len = node_path_up(path, len, cur);
			cur = node_parent(cur);
		}
		if (cur == top)
			break;
		len = node_path_up(path, len, cur);
		cur = node_next(cur);
		len = node_path_down(path, len, cur);
	}
}

void store_each(const struct store *s,
		void (*fn)(const struct node *n, const char *path, void *arg),
		void *arg)
{
	struct each_state st = { fn, arg };

	store_walk(lookup_len(s, "/", 1), each_node, &st);
	for (struct node *n = pool_node(s->specials_id); n; n = node_next(n))
		fn(n, node_name(n), arg);
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

static bool check_node(struct node *n, const char *path, void *arg)
{
	struct check_state *st = arg;
	const struct store_listing *l =
		&st->s->listings[node_id(n) % STORE_LISTINGS];
	const char *listing = l->id == node_id(n) ? l->names : NULL;
	const struct node *last = node_last_child(n);
	uint32_t bytes = 0, steps = 0;
	bool stale = false, broken = false;
	char child[NODE_PATH_BUF];

	st->reached++;
	if (n < node_pool.base + 1 || n >= node_pool.base + node_pool.fresh)
		problem(st, "node outside the pool", path);
	if (lookup_len(st->s, path, strlen(path)) != n)
		problem(st, "node missing from the path index", path);
	if (!name_valid(node_name_id(n)) ||
	    strlen(node_name(n)) != node_name_len(n))
		problem(st, "name not held, or of the wrong length", path);
	/* The circle from the first child comes back to the last one, in
	 * no more steps than there are nodes. */
	for (struct node *c = node_first_child(n); c;
	     c = c == last ? NULL : pool_node(c->next_id)) {
		size_t len = node_name_len(c) + 1;

		if (++steps > node_pool.live || !c->next_id) {
			problem(st, "broken child list", path);
			broken = true;
			break;
		}
		if (c->parent_id != node_id(n)) {
			node_path(c, child, sizeof(child));
			problem(st, "child with a wrong parent", child);
		}
		if (listing && bytes + len <= l->len &&
		    memcmp(listing + bytes, node_name(c), len) != 0)
			stale = true;
		bytes += (uint32_t)len;
	}
	if (listing && bytes != l->len)
		problem(st, "the cached listing's size is wrong", path);
	if (stale)
		problem(st, "the cached listing differs from the children",
			path);
	if (!checked_perms(n) || node_perms(n)->n == 0)
		problem(st, "node without permissions", path);
	/* The walk goes down only a list that ends. */
	return !broken;
}

static bool was_charged(const struct store *s, uint32_t d)
{
	return s->charged[d / 64] & (1ull << (d % 64));
}

/* The slot of charged domid d among those charged before it. */
static size_t charged_slot(const struct store *s, const uint32_t *first,
			   uint32_t d)
{
	uint64_t below = (1ull << (d % 64)) - 1;

	return first[d / 64] +
	       (size_t)__builtin_popcountll(s->charged[d / 64] & below);
}

/*
 * The per-domid counts the quotas rely on, recounted from the nodes.  Only
 * the domids ever charged are recounted, in a table of their own: account()
 * is the only writer of s->use and marks every domid it charges, so the
 * others' entries are zeros unless memory was corrupted, which is the
 * sanitizers' business.  The cost follows the store, not the 65,536
 * domids (a check of a small store, as the fuzzers make after every input,
 * would otherwise fault in two megabytes of zeros).
 */
static void check_domid_use(const struct store *s, struct check_state *st)
{
	uint32_t first[STORE_DOMIDS / 64];
	struct store_domid_use *count;
	const struct node *n;
	size_t at = 0, charged = 0;
	char what[64];

	for (size_t w = 0; w < STORE_DOMIDS / 64; w++) {
		first[w] = (uint32_t)charged;
		charged += (size_t)__builtin_popcountll(s->charged[w]);
	}
	count = calloc(charged ? charged : 1, sizeof(*count));
	if (!count) {
		problem(st, "no memory to recount the domains' nodes", "/");
		return;
	}
	while ((n = index_next(&s->index, &at))) {
		const struct perms *p = checked_perms(n);

		for (unsigned int i = 0; p && i < p->n; i++) {
			uint32_t d = p->e[i].domid;
			struct store_domid_use *c;

			if (!was_charged(s, d)) {
				snprintf(what, sizeof(what), "node accounting "
					 "of domain %u is wrong", d);
				problem(st, what, "/");
				continue;
			}
			c = &count[charged_slot(s, first, d)];
			if (i) {
				c->named++;
			} else {
				c->owned++;
				c->bytes += node_bytes(n);
			}
		}
	}
	/* The charged domids in order: their slots one after another. */
	for (size_t w = 0; w < STORE_DOMIDS / 64; w++) {
		const struct store_domid_use *c = &count[first[w]];

		for (uint64_t bits = s->charged[w]; bits;
		     bits &= bits - 1, c++) {
			uint32_t d = (uint32_t)(w * 64) +
				     (uint32_t)__builtin_ctzll(bits);

			if (c->owned == s->use[d].owned &&
			    c->named == s->use[d].named &&
			    c->bytes == s->use[d].bytes)
				continue;
			snprintf(what, sizeof(what), "node accounting of "
				 "domain %u is wrong", d);
			problem(st, what, "/");
		}
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
		if (!n->parent_id && path_is_special(node_name(n))) {
			specials++;
			check_node(n, node_name(n), &st);
		} else if (!n->parent_id && strcmp(node_name(n), "/") != 0) {
			problem(&st, "node without a parent", node_name(n));
		}
	}
	for (n = pool_node(s->specials_id); n; n = node_next(n)) {
		if (n->parent_id || !path_is_special(node_name(n)))
			problem(&st, "a node on the special list that is not "
				"special", node_name(n));
		specials--;
	}
	if (specials)
		problem(&st, "special nodes missing from their list", "@");
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
