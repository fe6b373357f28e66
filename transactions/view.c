/*
 * The view API: every read and write of a handler goes through here, with
 * a transaction (its entries, loaded from the live store on first access)
 * or without one (straight on the store).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "transactions/txn_impl.h"

/* Did the transaction delete or create an ancestor of path? */
static bool hidden_by_ancestor(const struct txn *t, const char *path)
{
	char buf[PATH_BUF];
	const char *p = path;

	if (strlen(path) >= sizeof(buf))
		return false;
	while (path_parent(p, buf, sizeof(buf))) {
		struct entry *e = entry_find(t, buf);

		if (e && (e->flags & E_FRESH))
			return true;
		p = buf;
	}
	return false;
}

static void fill_live(const struct node *n, struct view_node *out)
{
	out->value = node_value(n);
	out->value_len = node_value_len(n);
	out->perms = node_perms(n);
}

/* From its first read of the live store, t needs to know what changed. */
static void hold(struct store *s, struct txn *t)
{
	if (!t->hold.s)
		store_hold(s, &t->hold);
}

/*
 * The entry of path, loaded from the live store on first access, with the
 * live generation recorded for commit.  NULL when the path is hidden by a
 * fresh ancestor (it does not exist here) or memory ran out.
 */
static struct entry *load(struct store *s, struct txn *t, const char *path)
{
	struct entry *e = entry_find(t, path);
	struct node *live;

	if (e)
		return e;
	if (hidden_by_ancestor(t, path))
		return NULL;
	e = entry_add(t, path);
	if (!e)
		return NULL;
	hold(s, t);
	live = store_lookup(s, path);
	e->flags = E_CHECK_NODE;
	e->read_at = store_now(s);
	if (!live)
		return e;
	e->flags |= E_READ_LIVE;
	if (node_value_len(live)) {
		uint32_t len = node_value_len(live);

		e->value = malloc(len);
		if (!e->value) {
			t->failed = true;
			return e;
		}
		memcpy(e->value, node_value(live), len);
		e->value_len = len;
		t->bytes += len;
	}
	e->perms = perms_ref(node_perms(live));
	e->flags |= E_EXISTS;
	return e;
}

bool view_get(struct store *s, struct txn *t, const char *path,
	      struct view_node *out)
{
	struct entry *e;

	if (!t) {
		struct node *n = store_lookup(s, path);

		if (n)
			fill_live(n, out);
		return n != NULL;
	}
	e = load(s, t, path);
	if (!e || !(e->flags & E_EXISTS))
		return false;
	out->value = e->value;
	out->value_len = e->value_len;
	out->perms = e->perms;
	return true;
}

void view_nearest_ancestor(struct store *s, struct txn *t, const char *path,
			   struct view_node *out)
{
	char buf[PATH_BUF];
	const char *p = path;

	while (path_parent(p, buf, sizeof(buf))) {
		if (view_get(s, t, buf, out))
			return;
		p = buf;
	}
	/* "/" always exists and cannot be removed. */
	fill_live(store_lookup(s, "/"), out);
}

/* Is child the path of a direct child of parent? */
static bool is_child_of(const char *child, const char *parent)
{
	size_t plen = strlen(parent);

	/* Special paths have no parent: path_parent_len says 0. */
	return path_parent_len(child) == plen &&
	       strncmp(child, parent, plen) == 0 && child[plen] != '\0';
}

static bool in_kids(const struct entry *e, const char *name)
{
	for (unsigned int i = 0; i < e->nkids; i++)
		if (strcmp(e->kids[i], name) == 0)
			return true;
	return false;
}

/* Record the live children of e's node, as first listed. */
static int snapshot_kids(struct store *s, struct txn *t, struct entry *e)
{
	struct node *live = store_lookup(s, e->path);

	hold(s, t);
	e->flags |= E_LISTED | E_CHECK_LIST;
	e->listed_at = store_now(s);
	if (!live)
		return 0;
	e->flags |= E_LISTED_LIVE;
	if (!live->child_id)
		return 0;
	e->kids = calloc(node_count_children(live), sizeof(*e->kids));
	if (!e->kids)
		goto nomem;
	for (struct node *c = node_first_child(live); c; c = node_next(c)) {
		e->kids[e->nkids] = strdup(node_name(c));
		if (!e->kids[e->nkids])
			goto nomem;
		t->bytes += sizeof(*e->kids) + strlen(e->kids[e->nkids]) + 1;
		e->nkids++;
	}
	return 0;
nomem:
	t->failed = true;
	return ENOMEM;
}

int view_list_block(struct store *s, struct txn *t, const char *path,
		    const char **names, size_t *len)
{
	struct node *n;

	if (t)
		return EAGAIN;
	n = store_lookup(s, path);
	if (!n)
		return ENOENT;
	*names = store_listing(s, n, len);
	return *len && !*names ? EAGAIN : 0;
}

int view_list(struct store *s, struct txn *t, const char *path,
	      int (*fn)(const char *name, void *arg), void *arg)
{
	char child[PATH_BUF];
	struct entry *e;
	int ret;

	if (!t) {
		struct node *n = store_lookup(s, path);

		if (!n)
			return ENOENT;
		for (struct node *c = node_first_child(n); c; c = node_next(c))
			if ((ret = fn(node_name(c), arg)))
				return ret;
		return 0;
	}
	e = load(s, t, path);
	if (!e || !(e->flags & E_EXISTS))
		return t->failed ? ENOMEM : ENOENT;
	if (!(e->flags & E_FRESH)) {
		if (!(e->flags & E_LISTED) && (ret = snapshot_kids(s, t, e)))
			return ret;
		for (unsigned int i = 0; i < e->nkids; i++) {
			struct entry *ce;

			snprintf(child, sizeof(child), "%s/%s",
				 strcmp(path, "/") ? path : "", e->kids[i]);
			ce = entry_find(t, child);
			/* Deleted here; or re-created, and then listed below
			 * among the new children, where commit will put it. */
			if (ce && (!(ce->flags & E_EXISTS) ||
				   (ce->flags & E_FRESH)))
				continue;
			if ((ret = fn(e->kids[i], arg)))
				return ret;
		}
	}
	/* Then the children this transaction created, in creation order. */
	for (struct entry *c = t->changes; c; c = c->next_change) {
		const char *name = path_basename(c->path);

		if (!(c->flags & E_EXISTS) || !is_child_of(c->path, path) ||
		    (!(c->flags & E_FRESH) && in_kids(e, name)))
			continue;
		if ((ret = fn(name, arg)))
			return ret;
	}
	return 0;
}

/* Give e the value data; ENOMEM leaves it as it was. */
static int set_value(struct txn *t, struct entry *e, const void *data,
		     size_t len)
{
	char *copy = NULL;

	if (len) {
		copy = malloc(len);
		if (!copy) {
			t->failed = true;
			return ENOMEM;
		}
		memcpy(copy, data, len);
	}
	t->bytes += len;
	t->bytes -= e->value_len;
	free(e->value);
	e->value = copy;
	e->value_len = (uint32_t)len;
	return 0;
}

/* Make path exist in the view with new_perms, creating its parents first. */
static struct entry *create(struct store *s, struct txn *t, const char *path,
			    struct perms *new_perms)
{
	size_t len = strlen(path), end = len, ends[PATH_BUF / 2];
	unsigned int missing = 0;
	char buf[PATH_BUF];
	struct entry *e;

	if (len >= sizeof(buf))
		return NULL;
	memcpy(buf, path, len + 1);
	/* Up to the nearest node that exists in the view, without recursion:
	 * trees a thousand levels deep are allowed (XSA-418). */
	for (;;) {
		buf[end] = '\0';
		e = load(s, t, buf);
		if (e && (e->flags & E_EXISTS))
			break;
		ends[missing++] = end;
		if (path_is_special(path) || end <= 1)
			break;
		end = path_parent_len_n(path, end);
	}
	/* Then down, making each missing node exist. */
	while (missing--) {
		end = ends[missing];
		memcpy(buf, path, end);
		buf[end] = '\0';
		e = entry_find(t, buf);
		if (!e && !(e = entry_add(t, buf)))
			return NULL;
		e->flags |= E_EXISTS | E_FRESH | E_IMPLICIT;
		e->flags &= ~(unsigned int)E_REMOVED;
		t->created++;
		e->perms = perms_ref(new_perms);
		mark_modified(t, e);
	}
	return e;
}

int view_write(struct store *s, struct txn *t, const char *path,
	       struct perms *new_perms, const void *data, size_t len)
{
	struct entry *e;

	if (!t)
		return store_write(s, path, new_perms, data, len) ? 0 : ENOMEM;
	if (strlen(path) >= PATH_BUF)
		return EINVAL;
	e = create(s, t, path, new_perms);
	if (!e || set_value(t, e, data, len))
		return ENOMEM;
	e->flags &= ~(unsigned int)E_IMPLICIT;
	mark_modified(t, e);
	return 0;
}

int view_set_perms(struct store *s, struct txn *t, const char *path,
		   struct perms *perms)
{
	struct entry *e;

	if (!t) {
		struct node *n = store_lookup(s, path);

		if (!n)
			return ENOENT;
		store_set_perms(s, n, perms);
		return 0;
	}
	e = load(s, t, path);
	if (!e || !(e->flags & E_EXISTS))
		return t->failed ? ENOMEM : ENOENT;
	perms_unref(e->perms);
	e->perms = perms_ref(perms);
	e->flags &= ~(unsigned int)E_IMPLICIT;
	mark_modified(t, e);
	return 0;
}

struct removal {
	const struct txn *t;
	unsigned int nodes;
};

/* A live node going with the removal: count it if it is the owner's and
 * the transaction has not already removed or replaced it. */
static bool count_live(struct node *n, const char *path, void *arg)
{
	struct removal *r = arg;
	struct entry *e = entry_find(r->t, path);

	if (e && (e->flags & E_FRESH))
		return false;
	if (node_perms(n)->e[0].domid == (uint32_t)r->t->owner)
		r->nodes++;
	return true;
}

/* Credit the nodes quota with what removing path (target) deletes. */
static void count_removal(struct store *s, struct txn *t,
			  const struct entry *target, const char *path)
{
	struct removal r = { .t = t };
	size_t len = strlen(path);
	struct node *live;
	struct entry *e, *tmp;

	if (!(target->flags & E_FRESH) && (live = store_lookup(s, path)))
		store_walk(live, count_live, &r);
	HASH_ITER(hh, t->entries, e, tmp) {
		if ((e->flags & (E_EXISTS | E_FRESH)) == (E_EXISTS | E_FRESH) &&
		    strncmp(e->path, path, len) == 0 &&
		    (e->path[len] == '\0' || e->path[len] == '/'))
			r.nodes++;	/* made by this transaction */
	}
	t->deleted += r.nodes;
}

size_t view_children_len(struct store *s, struct txn *t, const char *path,
			 size_t max)
{
	struct node *live = store_lookup(s, path);
	struct entry *e = t ? entry_find(t, path) : NULL;
	bool live_kids = live && !(e && (e->flags & E_FRESH));
	size_t len = 0, taken = 0;

	/* The live children are counted up to max and what this
	 * transaction may take away from them, so that a length past max
	 * stays past it. */
	for (struct entry *c = t ? t->changes : NULL; c; c = c->next_change)
		if (!(c->flags & E_EXISTS) && is_child_of(c->path, path))
			taken += strlen(path_basename(c->path)) + 1;
	if (live_kids)
		len = node_children_len(live, max > SIZE_MAX - taken
						      ? SIZE_MAX : max + taken);
	if (!t)
		return len;
	/* The children this transaction created or deleted. */
	for (struct entry *c = t->changes; c; c = c->next_change) {
		bool was = live_kids && store_lookup(s, c->path);
		bool is = c->flags & E_EXISTS;
		size_t name = strlen(path_basename(c->path)) + 1;

		if (!is_child_of(c->path, path) || was == is)
			continue;
		if (is)
			len += name;
		else if (len >= name)
			len -= name;
	}
	return len;
}

int view_remove(struct store *s, struct txn *t, const char *path)
{
	size_t len = strlen(path);
	struct entry *e, *tmp, *target;

	if (!t) {
		struct node *n = store_lookup(s, path);

		if (!n)
			return ENOENT;
		return store_remove(s, n, NULL, NULL) ? EINVAL : 0;
	}
	target = load(s, t, path);
	if (!target || !(target->flags & E_EXISTS))
		return t->failed ? ENOMEM : ENOENT;
	if (t->owner >= 0)
		count_removal(s, t, target, path);
	perms_unref(target->gone_perms);
	target->gone_perms = perms_ref(target->perms);
	/* The node and whatever this transaction saw below it are gone. */
	HASH_ITER(hh, t->entries, e, tmp) {
		if (strncmp(e->path, path, len) == 0 &&
		    (e->path[len] == '\0' || e->path[len] == '/'))
			entry_clear(t, e);
	}
	target->flags |= E_FRESH | E_REMOVED;
	mark_modified(t, target);
	return 0;
}
