/*
 * persist/ internals: the journal files (schema/schema.h has their layout).
 *
 * journal_scan reads a journal's bytes: it hands over the changes of each
 * whole frame, in order, and says where the whole frames end (a torn tail
 * is cut there) or why the file is damaged.  A fold keeps the last change
 * of each key over one or more journals: what replaying them would leave,
 * so a key written a thousand times is applied once.  Its entries borrow
 * the journals' bytes (journal_map).
 */
#ifndef XS_JOURNAL_H
#define XS_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <uthash.h>

#include "schema/schema.h"

enum journal_state {
	JOURNAL_WHOLE,		/* every byte is the head or a whole frame */
	JOURNAL_TORN,		/* whole up to .whole, a torn tail after */
	JOURNAL_BAD,		/* damaged: .why, at byte .at */
};

struct journal_scan {
	enum journal_state state;
	size_t whole;		/* bytes of the head and the whole frames */
	size_t frames, changes;
	const char *why;
	size_t at;
};

/*
 * Scan len bytes of a journal (an empty file is an empty journal).  Each
 * whole frame is checked before its changes go to change (which may be
 * NULL), and then its bytes, head included, to frame (NULL too).  A
 * nonzero result of either stops the scan, and is returned; else 0.
 */
int journal_scan(const void *p, size_t len, struct journal_scan *s,
		 int (*change)(const struct schema_change *c, void *arg),
		 int (*frame)(const void *bytes, size_t len, void *arg),
		 void *arg);

/* A journal file mapped read-only (p NULL when it is empty). */
struct journal_map {
	void *p;
	size_t len;
};

/* 0; -1 with errno (ENOENT: there is none). */
int journal_map(const char *path, struct journal_map *m);
void journal_unmap(struct journal_map *m);

struct fold_entry {
	UT_hash_handle hh;
	struct schema_change c;		/* the last change of its key */
	bool oom;			/* could not be added */
};

struct fold {
	struct fold_entry *by_key;
	struct fold_block *blocks;	/* where the entries live (owned) */
	size_t count;
};

void fold_init(struct fold *f);
void fold_free(struct fold *f);
/* Make c the last change of its key: 0, or -1 without memory. */
int fold_add(struct fold *f, const struct schema_change *c);
/* journal_scan's change callback for a struct fold. */
int fold_change(const struct schema_change *c, void *arg);
const struct fold_entry *fold_find(const struct fold *f, const void *key,
				   size_t len);

/*
 * Scan the journal at path and fold it into f: 0 (*s says whether a tail
 * was cut), 1 when there is no such file, or -1 with *why set (the file
 * is damaged or unreadable, or memory ran out).  m keeps the bytes f
 * borrows.
 */
int journal_fold_file(const char *path, struct journal_map *m,
		      struct fold *f, struct journal_scan *s,
		      const char **why);

/* A new journal at path (replaced if there): its fd, open to append,
 * with the head written; -1 with errno. */
int journal_create(const char *path);

#endif
