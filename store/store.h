/*
 * store: the tree of nodes.
 *
 * Owns every node, its value and its reference on a permission list.
 * A node is a 20-byte record of the node pool (pool.h) naming its name
 * (not its path) by the 26-bit id of an interned name (names.h), linked
 * to its relatives by 26-bit ids, to its permission list by a 24-bit slot
 * and to its value, a block of its own that knows its length, by a
 * 32-bit reference (slab.h).
 * Lookup of a path is one probe of a keyed hash of full paths (index.h),
 * usually one slot, confirmed by comparing the names up the parent chain;
 * children are kept in creation order on a list per node, so listing
 * never scans the tree.
 * Every change takes a new generation from a global counter, which a
 * record does not keep.  The observer is told the one a node is created
 * with (the durable copy orders siblings by it); when a node last changed
 * (its value or permissions, or its list of children, apart, so that two
 * transactions can add different children to one parent) is kept only
 * while an open transaction may ask (store_hold; stamps.h).
 *
 * Knows nothing of connections, domains or policy: callers check access
 * (permissions/) and path syntax (store/path.h) first.
 */
#ifndef XS_STORE_H
#define XS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "store/index.h"
#include "store/names.h"
#include "store/pool.h"
#include "store/slab.h"
#include "store/slots.h"
#include "store/stamps.h"

/* Access bits of one permission entry. */
enum {
	PERM_NONE = 0,
	PERM_READ = 1,
	PERM_WRITE = 2,
	PERM_OWNER = 4,		/* only in computed access, never stored */
	/* Stored: the entry named a domain that did not exist when it was
	 * set, so it grants nothing to one created later (XSA-322). */
	PERM_IGNORE = 8,
};

struct perm {
	uint32_t domid;
	uint32_t access;	/* PERM_READ | PERM_WRITE */
};

/*
 * An immutable, reference-counted permission list: entry 0 is the owner
 * and its access is the default for domains without an entry of their own.
 * Nodes created below a parent share the parent's list.  Each list has a
 * slot in a table (perms_table) for its life, so that a node names it by
 * a 32-bit slot instead of a pointer.
 */
struct perms {
	unsigned int refs;
	unsigned int n;		/* >= 1 */
	uint32_t slot;		/* its slot in perms_table (never 0) */
	struct perm e[];
};

/* Every list's slot (slots.h). */
extern struct slot_table perms_table;

/* refs = 1, entries zeroed; NULL with errno ENOMEM (the list, or its
 * slot). */
struct perms *perms_alloc(unsigned int n);
struct perms *perms_ref(struct perms *p);
void perms_unref(struct perms *p);
bool perms_equal(const struct perms *a, const struct perms *b);

/*
 * One node: a 20-byte record of the node pool (store/pool.h), linked to
 * its parent, children and siblings by pool ids (0: none).  It
 * holds its name, not its path: node_path() builds the path from the
 * names of its ancestors, and the path index (store/index.h) finds a node
 * from a path.  Names are interned: the keys of every guest's home share
 * theirs.
 *
 * The children are a circle in creation order: a node names its last
 * child, whose next_id names the first.  So appending a child and
 * unlinking the first are O(1); unlinking another walks its elder
 * siblings (a removal does that for the node it removes, not for its
 * subtree, which goes first child first).  The size of a DIRECTORY reply is counted
 * when asked for (node_children_len), not kept, and so is the generation
 * a node was born with: only a load orders siblings by it (store_restore).
 * A generation read back from a file is at most NODE_GEN_MAX (at a million
 * changes a second, nine years of them; more is a damaged file).
 *
 * A pool id is below 2^POOL_ID_BITS (pool.h), so the three links take 26
 * bits each; the name's id (names.h) is below 2^NAMES_ID_BITS too, and
 * the four take the permission list's slot (below 2^NODE_PERMS_BITS) in
 * the 6 bits each leaves.  The value's length is its block's (slab.h):
 * a node keeps none.
 */
#define NODE_GEN_MAX ((UINT64_C(1) << 48) - 1)
#define NODE_VALUE_MAX SLAB_MAX	/* a request's payload is 4 KiB */
/* A permission list's slot is below 2^NODE_PERMS_BITS: 16 million lists
 * at once, past which a new one is ENOMEM. */
#define NODE_PERMS_BITS 24

struct node {
	uint32_t parent_id : 26;	/* 0 for "/" and the special nodes */
	uint32_t perms_0 : 6;		/* its list's slot, bits 0-5 */
	uint32_t child_id : 26;		/* its last child (0: none) */
	uint32_t perms_6 : 6;		/* bits 6-11 */
	uint32_t next_id : 26;		/* the next sibling (the last child's:
					 * the first); a special node's, the
					 * next special one (0: the last) */
	uint32_t perms_12 : 6;		/* bits 12-17 */
	uint32_t name_id : 26;		/* its name's (names.h): one reference,
					 * owned */
	uint32_t perms_18 : 6;		/* bits 18-23 */
	slab_ref value;			/* owned: its value's block (0: empty) */
};

_Static_assert(sizeof(struct node) == 20, "a node is one 20-byte record");
_Static_assert(POOL_ID_BITS == 26 && NAMES_ID_BITS == 26 &&
	       NODE_PERMS_BITS == 24, "the fields' widths");

/* The length of n's value (0 .. NODE_VALUE_MAX). */
static inline unsigned int node_value_len(const struct node *n)
{
	return n->value ? (unsigned int)slab_len(n->value) : 0;
}

/* The slot of n's permission list (perms_table): one reference, owned. */
static inline uint32_t node_perms_slot(const struct node *n)
{
	return (uint32_t)n->perms_0 | (uint32_t)n->perms_6 << 6 |
	       (uint32_t)n->perms_12 << 12 | (uint32_t)n->perms_18 << 18;
}

static inline void node_set_perms_slot(struct node *n, uint32_t slot)
{
	n->perms_0 = slot & 0x3f;
	n->perms_6 = (slot >> 6) & 0x3f;
	n->perms_12 = (slot >> 12) & 0x3f;
	n->perms_18 = (slot >> 18) & 0x3f;
}

/* The permission list of a node. */
static inline struct perms *node_perms(const struct node *n)
{
	return slot_get(&perms_table, node_perms_slot(n));
}

/* The node of a pool id (0: NULL). */
static inline struct node *pool_node(uint32_t id)
{
	return id ? node_pool.base + id : NULL;
}

/* A node's pool id: its index in the pool's array. */
static inline uint32_t node_id(const struct node *n)
{
	return (uint32_t)(n - node_pool.base);
}

static inline struct node *node_parent(const struct node *n)
{
	return pool_node(n->parent_id);
}

static inline struct node *node_last_child(const struct node *n)
{
	return pool_node(n->child_id);
}

static inline struct node *node_first_child(const struct node *n)
{
	return n->child_id ? pool_node(node_last_child(n)->next_id) : NULL;
}

/* The next sibling: NULL after the last (or the last special node). */
static inline struct node *node_next(const struct node *n)
{
	const struct node *parent = node_parent(n);

	return parent && parent->child_id == node_id(n) ? NULL
							 : pool_node(n->next_id);
}

/* How many children n has: a walk over them. */
static inline uint32_t node_count_children(const struct node *n)
{
	uint32_t k = 0;

	for (const struct node *c = node_first_child(n); c; c = node_next(c))
		k++;
	return k;
}

/*
 * The last component of a node's path: its entry in the parent's listing
 * ("/" for the root, the whole path for a special node), NUL-terminated.
 */
static inline uint32_t node_name_id(const struct node *n)
{
	return n->name_id;
}

static inline const char *node_name(const struct node *n)
{
	return name_entry(node_name_id(n))->s;
}

/* Its bytes, without the NUL. */
static inline size_t node_name_len(const struct node *n)
{
	return name_entry(node_name_id(n))->len;
}

/*
 * Bytes of n's DIRECTORY reply (each child's name and its NUL), counted
 * over the children; once past max, some count past max (a quota check
 * never walks more of a big directory than its limit needs).
 */
static inline size_t node_children_len(const struct node *n, size_t max)
{
	size_t len = 0;

	for (const struct node *c = node_first_child(n); c && len <= max;
	     c = node_next(c))
		len += node_name_len(c) + 1;
	return len;
}

/* Its value: node_value_len bytes (not NUL-terminated). */
static inline const char *node_value(const struct node *n)
{
	return n->value ? (const char *)slab_ptr(n->value) : "";
}

/* At rest (the daemon has had nothing to do for a while): memory held
 * ahead of the nodes' needs given back (slab_rest). */
static inline void store_rest(void)
{
	slab_rest();
}

/* Room for any node's path and its NUL. */
#define NODE_PATH_BUF 4096

/*
 * Write n's path into buf (size bytes, NODE_PATH_BUF always enough),
 * NUL-terminated; returns its length.
 */
size_t node_path(const struct node *n, char *buf, size_t size);

/*
 * A path kept in step with a walk, in a buffer of NODE_PATH_BUF bytes:
 * the path of n's parent (len bytes at path) made n's, and n's made its
 * parent's.  Each returns the new length.
 */
size_t node_path_down(char *path, size_t len, const struct node *n);
size_t node_path_up(char *path, size_t len, const struct node *n);

/* n's path is the len bytes at path (which need not end there). */
bool node_has_path(const struct node *n, const char *path, size_t len);

#define STORE_DOMIDS 65536		/* domids a permission entry can name */
/* Directory listings the store keeps ready (a node's own slot is its id
 * modulo this): few directories are listed again and again. */
#define STORE_LISTINGS 64

/* How the nodes of the store refer to one domid. */
struct store_domid_use {
	uint32_t owned;			/* nodes whose entry 0 names it */
	uint32_t named;			/* other entries naming it */
	uint64_t bytes;			/* memory of the nodes it owns */
};

/*
 * Who is told of every change, once it is made (persist/ keeps its file
 * in step this way): a node created, or its value or permissions changed;
 * a node about to be freed by a removal.
 */
struct store_observer {
	/* born: the generation n was created with when this made it (a
	 * parent's is lower than its children's, siblings' follow their
	 * order), 0 when it changed. */
	void (*changed)(const struct node *n, const char *path,
			size_t path_len, uint64_t born, void *arg);
	void (*removed)(const struct node *n, const char *path, void *arg);
	void *arg;
};

/*
 * A reader of when nodes changed: an open transaction, from its first
 * read.  While any is held, every change is stamped (stamps.h).
 */
struct store_hold {
	struct store *s;		/* NULL: not held */
	struct store_hold *prev, *next;	/* the store's, oldest first */
	uint64_t since;			/* the store's generation when taken */
};

struct store {
	struct path_index index;	/* every node, owned */
	uint64_t gen;			/* last generation handed out */
	struct stamps stamps;		/* owned: changes since the oldest
					 * hold began (none while none) */
	struct store_hold *oldest, *newest;	/* holds, not owned */
	struct store_domid_use *use;	/* [STORE_DOMIDS], owned */
	uint64_t *charged;		/* [STORE_DOMIDS / 64] bits, owned: the
					 * domids whose use was ever counted
					 * (the others' entries are zeros) */
	const struct store_observer *observer;	/* NULL: nobody */
	uint32_t specials_id;		/* the special nodes, linked by their
					 * sibling links (they have no parent) */
	uint32_t *misordered;		/* ids of parents restored with their
					 * children out of order (a restore) */
	size_t nmisordered, misordered_cap;
	uint64_t *restored_born;	/* by node id: the generation each
					 * node restored was born with, until
					 * store_restore_done (0: none) */
	size_t restored_cap;
	struct store_listing {		/* listings kept, by node id */
		uint32_t id;		/* 0: none */
		uint32_t len;
		char *names;
	} listings[STORE_LISTINGS];
};

void store_init(struct store *s, struct perms *root_perms);

/* The number of nodes, the special ones and "/" included. */
static inline unsigned long store_count(const struct store *s)
{
	return (unsigned long)s->index.count;
}

void store_destroy(struct store *s);

struct node *store_lookup(const struct store *s, const char *path);

/*
 * Hold s for h (not held): from now until store_release, every change is
 * stamped, so that node_changed_since can tell of it.
 */
void store_hold(struct store *s, struct store_hold *h);
/* End h (nothing when not held); with the last hold, the stamps go. */
void store_release(struct store_hold *h);

/* The generation a reader notes now, to ask later what changed since. */
static inline uint64_t store_now(const struct store *s)
{
	return s->gen;
}

/* n fresh generations, the first returned: for a writer that numbers the
 * nodes of a whole copy in the order store_each gives them (parents
 * before children, siblings in order), as births are numbered. */
static inline uint64_t store_take_gens(struct store *s, uint64_t n)
{
	uint64_t first = s->gen + 1;

	s->gen += n;
	return first;
}

/*
 * Did n's value, permissions or existence (what: STAMP_NODE), or its list
 * of children (STAMP_LIST), change after generation since?  Asked by a
 * holder, of a since no earlier than its hold: true also when the stamps
 * were lost (stamps.h).
 */
bool node_changed_since(const struct store *s, const struct node *n,
			uint64_t since, unsigned int what);

/*
 * The names of n's children as DIRECTORY sends them (each NUL-terminated,
 * in order; *len bytes, 0 without children): built on first use and kept
 * until the children change, so listing a big directory again is one copy
 * rather than a walk over every child.  NULL when n has no children or
 * there is no memory (the caller walks the children instead).
 */
const char *store_listing(struct store *s, const struct node *n,
			  size_t *len);

/*
 * Create path and every missing ancestor, each with perms (shared) and an
 * empty value.  Returns the node; an existing node is returned untouched.
 * A path starting with '@' creates a parentless special node.
 * NULL with errno = ENOMEM on allocation failure (nothing half-created),
 * or EINVAL for a path of NODE_PATH_BUF bytes or more.
 */
struct node *store_create(struct store *s, const char *path,
			  struct perms *perms);

/*
 * Set the value of path, creating it and its missing ancestors (with
 * perms, as store_create) when needed.  All or nothing: NULL with errno =
 * ENOMEM, or EINVAL for a value of more than NODE_VALUE_MAX bytes, leaves
 * the tree as it was.
 */
struct node *store_write(struct store *s, const char *path,
			 struct perms *perms, const void *data, size_t len);

/*
 * A write in two steps, for a commit that must apply all or nothing:
 * store_prepare makes, linked nowhere, the record a write of path with
 * (perms, data, len) needs: its one allocation (NULL with errno ENOMEM,
 * nothing changed).  store_put then writes it, and cannot fail: it
 * creates path, whose parent must exist by then (or which is special),
 * from the prepared record, or gives the live node the prepared value
 * (its permissions stay: store_set_perms).  (A parent missing after all
 * is made as store_write would, which may fail: NULL, ENOMEM.)  store_put takes the record;
 * store_unprepare frees one that will not be put.  Reserve room for the
 * puts that may create first (store_reserve).
 */
struct node *store_prepare(const char *path, struct perms *perms,
			   const void *data, size_t len);
struct node *store_put(struct store *s, const char *path, struct node *prep);
void store_unprepare(struct node *prep);

/*
 * Put back one node saved earlier (start-up, live update): its parent must
 * exist already (or the path is special), and it becomes the parent's last
 * child (store_restore_done puts children restored out of order back in
 * order of birth).  An existing node (the root) takes the saved value and
 * perms.  The observer is not told.  NULL with errno: ENOENT (no parent yet), EINVAL (a bad path,
 * a node other than the root or a special one restored twice, or a
 * sibling born at the same generation), ENOMEM.  hint (or NULL):
 * where the caller keeps the last node restored, whose ancestors are
 * tried as the parent before a lookup; no node may be removed between
 * calls that share it.
 * The path must not exist yet, unless it is the root or special.
 */
struct node *store_restore(struct store *s, const char *path,
			   struct perms *perms, const void *data, size_t len,
			   uint64_t born, struct node **hint);

/* A caller about to restore path (len bytes) some calls later says so
 * now, so that the place it takes in the index is in the cache by then
 * (a load that names each node 16 restores ahead took a sixth less
 * time).  Changes nothing. */
void store_prefetch(const struct store *s, const char *path, size_t len);

/*
 * After the nodes are restored: every list of children that was restored
 * out of order, put in order of birth (DIRECTORY lists children in the
 * order they were made).  0, or -1 with errno ENOMEM, or EINVAL when two
 * children of a node were born at one generation (a damaged file).
 */
int store_restore_done(struct store *s);

/*
 * Room in the index for that many more nodes, so that creating them
 * never grows it (a load sizes it once): 0, or -1 with errno ENOMEM.
 */
int store_reserve(struct store *s, size_t nodes);

/* Does any node's permission list name domid (as owner or entry)? */
bool store_domid_referenced(const struct store *s, uint32_t domid);

/* Replace the permission list; takes a new reference on perms. */
void store_set_perms(struct store *s, struct node *n, struct perms *perms);

/*
 * Delete n and its subtree, children before parents, without recursion.
 * each(node, its path, arg) runs for every node just before it is freed.
 * The root "/" cannot be removed (returns -EINVAL).
 */
int store_remove(struct store *s, struct node *n,
		 void (*each)(struct node *n, const char *path, void *arg),
		 void *arg);

/*
 * Walk the subtree of n in pre-order without recursion, telling fn each
 * node's path.  fn returns false to skip the children of the node it was
 * given.
 */
void store_walk(struct node *n,
		bool (*fn)(struct node *n, const char *path, void *arg),
		void *arg);

/*
 * Call fn for every node with its path: the tree from "/" in pre-order
 * (parents before children, siblings in order), then the special nodes.
 * fn must not change the store.
 */
void store_each(const struct store *s,
		void (*fn)(const struct node *n, const char *path, void *arg),
		void *arg);

/*
 * Verify the invariants (every node reachable from its parent, child lists
 * and counts consistent, parents present).  Returns the number of problems,
 * each described through report when it is not NULL.
 */
unsigned int store_check(const struct store *s,
			 void (*report)(const char *what, const char *path,
					void *arg),
			 void *arg);

#endif
