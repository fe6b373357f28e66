/*
 * Transactions as an overlay of per-path entries over the live store.
 *
 * Every path a transaction touches gets one entry, loaded on first access:
 * whether the node exists in the transaction's view, its value and
 * permissions there, and the live generations to re-check at commit.
 * A node the transaction deleted or created is "fresh": live nodes below
 * it are invisible to the transaction, and commit replaces the live subtree.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "transactions/txn_impl.h"

void txn_set_init(struct txn_set *set)
{
	memset(set, 0, sizeof(*set));
}

uint32_t txn_id(const struct txn *t)
{
	return t->id;
}

unsigned int txn_nodes(const struct txn *t)
{
	return HASH_COUNT(t->entries);
}

void txn_count_nodes_of(struct txn *t, unsigned int domid)
{
	t->owner = domid;
}

long txn_net_nodes(const struct txn *t)
{
	return (long)t->created - (long)t->deleted;
}

size_t txn_set_bytes(const struct txn_set *set)
{
	size_t bytes = 0;

	for (const struct txn *t = set->head; t; t = t->next)
		bytes += t->bytes;
	return bytes;
}

struct txn *txn_find(const struct txn_set *set, uint32_t id)
{
	for (struct txn *t = set->head; t; t = t->next)
		if (t->id == id)
			return t;
	return NULL;
}

struct txn *txn_start(struct txn_set *set)
{
	struct txn *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	/* Never 0, never an id still in use, even after wrapping. */
	do
		t->id = ++set->last_id;
	while (t->id == 0 || txn_find(set, t->id));
	t->changes_tail = &t->changes;
	t->owner = -1;
	t->next = set->head;
	set->head = t;
	set->count++;
	if (set->open_total)
		(*set->open_total)++;
	return t;
}

struct txn *txn_adopt(struct txn_set *set, uint32_t id)
{
	uint32_t last = set->last_id;
	struct txn *t;

	if (id == 0 || txn_find(set, id))
		return NULL;
	set->last_id = id - 1;
	t = txn_start(set);
	set->last_id = last;
	if (t)
		t->adopted = true;
	return t;
}

void free_kids(struct txn *t, struct entry *e)
{
	for (unsigned int i = 0; i < e->nkids; i++) {
		t->bytes -= sizeof(*e->kids) + strlen(e->kids[i]) + 1;
		free(e->kids[i]);
	}
	free(e->kids);
	e->kids = NULL;
	e->nkids = 0;
	e->flags &= ~(unsigned int)E_LISTED;
}

/* Forget the node's contents: it does not exist in the view. */
void entry_clear(struct txn *t, struct entry *e)
{
	t->bytes -= e->value_len;
	free(e->value);
	e->value = NULL;
	e->value_len = 0;
	perms_unref(e->perms);
	e->perms = NULL;
	free_kids(t, e);
	e->flags &= ~(unsigned int)E_EXISTS;
}

static void txn_free(struct txn *t)
{
	struct entry *e, *tmp;

	store_release(&t->hold);
	HASH_ITER(hh, t->entries, e, tmp) {
		HASH_DELETE(hh, t->entries, e);
		entry_clear(t, e);
		perms_unref(e->gone_perms);
		free(e);
	}
	free(t);
}

void txn_discard(struct txn_set *set, struct txn *t)
{
	for (struct txn **p = &set->head; *p; p = &(*p)->next) {
		if (*p == t) {
			*p = t->next;
			set->count--;
			if (set->open_total)
				(*set->open_total)--;
			break;
		}
	}
	txn_free(t);
}

void txn_set_clear(struct txn_set *set)
{
	while (set->head)
		txn_discard(set, set->head);
}

struct entry *entry_find(const struct txn *t, const char *path)
{
	struct entry *e;

	HASH_FIND(hh, t->entries, path, strlen(path), e);
	return e;
}

struct entry *entry_add(struct txn *t, const char *path)
{
	size_t len = strlen(path);
	struct entry *e = calloc(1, sizeof(*e) + len + 1);

	if (!e) {
		t->failed = true;
		return NULL;
	}
	memcpy(e->path, path, len + 1);
	HASH_ADD_KEYPTR(hh, t->entries, e->path, len, e);
	if (!t->entries) {
		/* uthash could not make the table (HASH_NONFATAL_OOM). */
		free(e);
		t->failed = true;
		return NULL;
	}
	t->bytes += sizeof(*e) + len + 1;
	return e;
}

void mark_modified(struct txn *t, struct entry *e)
{
	if (e->flags & E_MODIFIED)
		return;
	e->flags |= E_MODIFIED;
	e->seq = t->nchanges++;
	*t->changes_tail = e;
	t->changes_tail = &e->next_change;
}

/*
 * live (or NULL), at a path the transaction saw at generation at, when a
 * node was there or not (seen): gone, come, or changed (what) since?  A
 * node removed and made again is stamped anew.
 */
static bool changed_since_seen(struct store *s, const struct node *live,
			       bool seen, uint64_t at, unsigned int what)
{
	return live ? !seen || node_changed_since(s, live, at, what) : seen;
}

/* Did the live node at e's path change since the transaction saw it? */
static bool conflicts(struct store *s, const struct entry *e)
{
	struct node *live;

	if (!(e->flags & (E_CHECK_NODE | E_CHECK_LIST)))
		return false;
	live = store_lookup(s, e->path);
	return ((e->flags & E_CHECK_NODE) &&
		changed_since_seen(s, live, e->flags & E_READ_LIVE, e->read_at,
				   STAMP_NODE)) ||
	       ((e->flags & E_CHECK_LIST) &&
		changed_since_seen(s, live, e->flags & E_LISTED_LIVE,
				   e->listed_at, STAMP_LIST));
}

static int by_depth(const void *a, const void *b)
{
	const struct entry *ea = *(struct entry *const *)a;
	const struct entry *eb = *(struct entry *const *)b;
	unsigned int da = path_depth(ea->path), db = path_depth(eb->path);

	/* Parents first; siblings in the order they were created. */
	if (da != db)
		return da < db ? -1 : 1;
	return ea->seq < eb->seq ? -1 : ea->seq > eb->seq;
}

/*
 * Write the transaction's changes into the live store, all or nothing:
 * every allocation is made before the first change (the nodes' records
 * prepared, room reserved), so ENOMEM leaves the store as it was.
 */
static int apply(struct store *s, struct txn *t)
{
	size_t cap = t->nchanges ? t->nchanges : 1;
	struct entry **order = calloc(cap, sizeof(*order));
	struct node **prep = calloc(cap, sizeof(*prep));
	unsigned int n = 0, i;

	if (!order || !prep)
		goto nomem;
	for (struct entry *e = t->changes; e; e = e->next_change)
		if (e->flags & E_EXISTS)
			order[n++] = e;
	/* Parents before children. */
	qsort(order, n, sizeof(*order), by_depth);
	if (store_reserve(s, n) != 0)
		goto nomem;
	for (i = 0; i < n; i++) {
		prep[i] = store_prepare(order[i]->path, order[i]->perms,
					order[i]->value, order[i]->value_len);
		if (!prep[i]) {
			while (i--)
				store_unprepare(prep[i]);
			goto nomem;
		}
	}
	/* From here nothing can fail.  First drop the live subtrees this
	 * transaction replaced, then write what exists. */
	for (struct entry *e = t->changes; e; e = e->next_change) {
		struct node *live;

		if ((e->flags & E_FRESH) && (live = store_lookup(s, e->path)))
			store_remove(s, live, NULL, NULL);
	}
	for (i = 0; i < n; i++) {
		struct node *live = store_put(s, order[i]->path, prep[i]);

		if (!live)	/* only if its parent was missing after all */
			log_error("commit: out of memory writing %s",
				  order[i]->path);
		else if (!perms_equal(node_perms(live), order[i]->perms))
			store_set_perms(s, live, order[i]->perms);
	}
	free(order);
	free(prep);
	return 0;

nomem:
	log_error("commit: out of memory: nothing applied");
	free(order);
	free(prep);
	return ENOMEM;
}

/* Whether the commit reports e as removed (see txn_commit). */
static bool reported_removed(const struct entry *e)
{
	/* A node that never existed outside is no news. */
	return !(e->flags & E_EXISTS) && (e->flags & E_REMOVED) &&
	       !((e->flags & E_CHECK_NODE) && !(e->flags & E_READ_LIVE));
}

int txn_commit(struct txn_set *set, struct txn *t, struct store *s,
	       txn_removing_fn *removing, txn_changed_fn *changed, void *arg)
{
	struct entry *e, *tmp;
	int err = 0;

	if (t->failed) {
		err = ENOMEM;
		goto out;
	}
	if (t->adopted) {
		err = EAGAIN;
		goto out;
	}
	HASH_ITER(hh, t->entries, e, tmp) {
		if (conflicts(s, e)) {
			err = EAGAIN;
			goto out;
		}
	}
	if (removing)
		for (e = t->changes; e; e = e->next_change)
			if (reported_removed(e))
				removing(e->path, arg);
	err = apply(s, t);
	if (err)
		goto out;
	if (changed) {
		for (e = t->changes; e; e = e->next_change) {
			/* Parents created along the way are no news either
			 * (as for writes outside transactions). */
			if (e->flags & E_EXISTS) {
				if (!(e->flags & E_IMPLICIT))
					changed(e->path, false, e->perms, arg);
			} else if (reported_removed(e)) {
				changed(e->path, true, e->gone_perms, arg);
			}
		}
	}
out:
	txn_discard(set, t);
	return err;
}
