/*
 * tests/unit: the files of a database for the persist suites (test-persist,
 * test-journal).
 *
 * Each test case's tests share a parent directory, made and removed in
 * the runner's own process (an unchecked fixture: db_rig_make_top,
 * db_rig_remove_top), so that a test that fails, in its forked child,
 * leaves nothing behind; each test works in a fresh subdirectory of it
 * (db_rig_setup), where dbpath names the tdb file and jpath, oldpath its
 * journals.  Everything is static inline, as in unit.h.
 */
#ifndef XS_TESTS_DB_RIG_H
#define XS_TESTS_DB_RIG_H

#include <stdio.h>
#include <stdlib.h>

#include "persist/db.h"
#include "tests/unit/unit.h"

static char top[64], dir[96], dbpath[128], jpath[160], oldpath[160];
static struct event_base *base;

static inline void db_rig_make_top(void)
{
	snprintf(top, sizeof(top), "/tmp/xs-db-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(top));
}

static inline void db_rig_remove_top(void)
{
	unit_remove_dir(top);
}

static inline void db_rig_setup(void)
{
	snprintf(dir, sizeof(dir), "%s/XXXXXX", top);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(dbpath, sizeof(dbpath), "%s/test.tdb", dir);
	snprintf(jpath, sizeof(jpath), "%s.journal", dbpath);
	snprintf(oldpath, sizeof(oldpath), "%s.journal.old", dbpath);
	unsetenv("XENSTORED_JOURNAL_LIMIT");
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
}

static inline void db_rig_teardown(void)
{
	event_base_free(base);
}

/* db_open of dbpath, which must say restorable as asked. */
static inline struct db *open_db(bool want_restorable)
{
	bool restorable = !want_restorable;
	struct db *db = db_open(dbpath, &restorable);

	ck_assert_msg(db != NULL, "db_open %s failed", dbpath);
	ck_assert_int_eq(restorable, want_restorable);
	return db;
}

static inline void write_file(const char *path, const void *p, size_t len)
{
	FILE *f = fopen(path, "wb");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(p, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

/* The whole of the file at path, in *p (malloc'd). */
static inline void file_bytes(const char *path, unsigned char **p,
			      size_t *len)
{
	FILE *f = fopen(path, "rb");
	long n;

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	ck_assert_int_ge(n, 0);
	rewind(f);
	*p = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(*p);
	ck_assert_uint_eq(fread(*p, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
}

#endif
