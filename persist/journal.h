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

#include <stdint.h>
#include <sys/types.h>

#include "schema/schema.h"

enum journal_state {
	JOURNAL_WHOLE,		/* the head and whole frames up to .whole,
				 * then zeros or (version 3) an earlier
				 * life's bytes, if anything */
	JOURNAL_TORN,		/* whole up to .whole, a torn tail after */
	JOURNAL_BAD,		/* damaged: .why, at byte .at */
};

struct journal_scan {
	enum journal_state state;
	size_t whole;		/* bytes of the head and the whole frames */
	size_t frames, changes;
	const char *why;
	size_t at;
	uint32_t version;	/* its head's (0: none read) */
	uint64_t salt;		/* its head's (0 before version 3) */
};

/*
 * Scan len bytes of a journal (an empty file is an empty journal).  The
 * changes of each frame whose checksums hold (without check, only the
 * frame heads' are: a journal this daemon wrote) go to change (which may
 * be NULL) as they are read, each checked as schema_read_change does,
 * then the frame's bytes, head included, to frame (NULL too).  A nonzero
 * result of either stops the scan, and is returned; else 0.  A scan that
 * ends JOURNAL_BAD may have handed over some changes of the bad frame:
 * callers stage them (a fold) and drop them then; those of a torn tail
 * are never handed over.
 */
int journal_scan(const void *p, size_t len, struct journal_scan *s,
		 bool check,
		 int (*change)(const struct schema_change *c, void *arg),
		 int (*frame)(const void *bytes, size_t len, void *arg),
		 void *arg);

/* A journal file mapped read-only (p NULL when it is empty). */
struct journal_map {
	void *p;
	size_t len;
};

/* 0; -1 with errno (ENOENT: there is none).  through: it will be read
 * from start to end (its pages are mapped at once). */
int journal_map(const char *path, bool through, struct journal_map *m);
void journal_unmap(struct journal_map *m);

struct fold_entry {
	uint64_t hash;			/* of the key */
	struct schema_change c;		/* the last change of its key (the
					 * key a copy the fold owns) */
	uint64_t born;			/* when c is a node's put that says
					 * "as before" (schema.h): the birth
					 * an earlier put of the fold gave
					 * (0: none did; the checkpoint's) */
};

struct fold {
	struct fold_entry *v;		/* one a key, first seen first */
	size_t count, cap;
	uint32_t *slots;		/* open addressing: 0 empty, else
					 * an index in v, plus 1 */
	size_t mask;			/* slots - 1 (a power of two) */
	struct key_chunk *keys;		/* the keys' copies (owned) */
};

void fold_init(struct fold *f);
void fold_free(struct fold *f);
/* Make c the last change of its key: 0, or -1 without memory.  A node's
 * put that says "as before" keeps the birth of its key's put before. */
int fold_add(struct fold *f, const struct schema_change *c);
/* The birth of e's node put: its record's, else the one the fold kept
 * (0: the node's as it was before the journals, in the checkpoint). */
uint64_t fold_entry_born(const struct fold_entry *e);
/* journal_scan's change callback for a struct fold. */
int fold_change(const struct schema_change *c, void *arg);
/* The entry of key (valid until the next fold_add), or NULL. */
const struct fold_entry *fold_find(const struct fold *f, const void *key,
				   size_t len);

/*
 * Scan the journal at path (check as for journal_scan) and fold it into
 * f: 0 (*s says whether a tail was cut), 1 when there is no such file, or
 * -1 with *why set (the file is damaged or unreadable, or memory ran
 * out).  m keeps the values f borrows.
 */
int journal_fold_file(const char *path, bool check, struct journal_map *m,
		      struct fold *f, struct journal_scan *s,
		      const char **why);

/*
 * The live journal, appended to through a shared mapping: a commit of up
 * to a kilobyte is a copy into the page cache, which a kill -9 keeps as
 * it keeps a write(), without the system call (1 to 2 us on a virtual
 * machine, a tenth of a request's cost); a larger one is a pwrite at
 * the same place, unless the mapping's page tables are filled there
 * already (a spare's, journal_kept), or its file is a spare whose pages
 * stay: then it is a copy too.  Space is allocated ahead with fallocate,
 * so that a full file system is an error here, never a SIGBUS at the
 * copy; the file therefore ends in zeros (or a spare's last life's
 * frames) until journal_close cuts them, and journal_scan takes either
 * for the end.  A frame's head is copied before its payload: a copy cut
 * short leaves a frame that fails its checksum with no frame of its salt
 * after it, a torn tail.
 */
struct journal_out {
	int fd;			/* -1: closed */
	unsigned char *map;	/* MAP_SHARED, mapped bytes of address */
	size_t mapped;
	size_t allocated;	/* bytes of the file, allocated */
	size_t populated;	/* bytes of the mapping, page tables filled */
	size_t end;		/* the head and the whole frames */
	size_t ahead;		/* allocated ahead of end, at least */
	bool reused;		/* its file is a spare's: pages it had before
				 * are worth their page tables (above) */
	uint32_t version;	/* of its head (schema.h) */
	uint64_t salt;		/* of its head: its frames are sealed with it */
};

/*
 * A closed journal's mapping, kept for when its file comes back as the
 * spare (journal_reuse): filling a mapping's page tables costs about what
 * writing the bytes costs (a few microseconds a page on a virtual
 * machine), and a spare's stay filled from one life to the next, so that
 * its commits are copies with neither a system call nor a fault.  The
 * file's dev and inode name it: while mapped, its inode cannot be used
 * again.
 */
struct journal_kept {
	unsigned char *map;	/* NULL: none */
	size_t mapped;
	size_t populated;
	size_t end;		/* where its frames end, once closed */
	dev_t dev;
	ino_t ino;
};

void journal_kept_free(struct journal_kept *k);

/* Create the journal at path (whole == 0; this version, a new salt), or
 * continue the one there, cut to its first whole bytes, with j->version
 * and j->salt (set by the caller: the file's own as a scan read them, or
 * those of the journal this daemon closed; version 1 is made 2), its head
 * written again; allocating about ahead bytes at a time: 0, or -1 with
 * errno (nothing open). */
int journal_open(struct journal_out *j, const char *path, size_t whole,
		 size_t ahead);
/*
 * A journal this daemon wrote (its head is this version's), its changes
 * in the checkpoint, made empty to be used again (a spare, db.c): a new
 * head, of a new salt, so that none of its frames is one of the next
 * life's (schema.h); they stay, to be written over.  Its pages stay
 * allocated: a new journal's first write to each page costs a page's
 * allocation and zeroing, several microseconds on a virtual machine,
 * and wiping them with zeros (until the twenty-seventh session) cost a
 * copy of the whole file.  0, or -1 with errno (then its head may be
 * either: not to be used).
 */
int journal_renew(const char *path);
/* Rename the renewed journal spare to path and open it as journal_open
 * opens a new one (writing after its head, over its last life's
 * frames), through k's mapping when k is the spare's (k is then empty):
 * 0, or -1 with errno (nothing open; path may then be the spare,
 * renamed). */
int journal_reuse(struct journal_out *j, const char *spare, const char *path,
		  size_t ahead, struct journal_kept *k);
/* Append a sealed frame of len bytes (its SCHEMA_FRAME_HEAD bytes of
 * head, then the payload): 0, or -1 with errno (nothing appended). */
int journal_append(struct journal_out *j, const unsigned char *frame,
		   size_t len);
/*
 * Give back the file's pages past its last frame (to the page holding
 * it), which allocating ahead and a spare's earlier life left: on a
 * tmpfs they are memory, up to the journal's limit, that a journal at
 * rest has no use for.  The mapping stays; the next append allocates
 * again.  0, or -1 with errno (the journal unchanged).
 */
int journal_shrink(struct journal_out *j);
/* With cut, cut the zeros after the last frame; unmap and close: 0, or
 * -1 with errno (closed all the same).  Closing a closed one does
 * nothing. */
int journal_close(struct journal_out *j, bool cut);
/* journal_close with cut, its mapping handed to k (k empty when it had
 * none, or closing failed: then -1 with errno). */
int journal_close_keep(struct journal_out *j, struct journal_kept *k);

#endif
