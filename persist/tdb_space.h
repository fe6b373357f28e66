/*
 * persist/ internals: a finished checkpoint's free space given back.
 *
 * libtdb grows a file ahead of need, by room for a hundred records the
 * size of the one being stored (or a quarter of the file), and writes pad
 * bytes over the new space.  A checkpoint's records are blocks of about
 * 20 KB, so a checkpoint written once ends with up to 2 MB, or a third of
 * its size, of free space: RAM, on the tmpfs the files live on.  Nothing
 * writes to a checkpoint once it is closed (a compaction makes a new
 * one), so the whole pages inside its free records can be punched out
 * (FALLOC_FL_PUNCH_HOLE, the size kept): each free record keeps its head
 * and its tailer, which is all libtdb reads of one, and its free bytes
 * read back as zeros.
 *
 * This reads tdb's on-disk layout (tdb 1.x, version 0x26011967 + 6, in
 * this machine's byte order, as the writer made it): the free list's
 * head after the file's header, and each free record's head.  Anything
 * else found (another version, a record without the free magic, a loop, an
 * offset out of the file) stops it: the rest of the file is then left as
 * it is, which is always correct.
 */
#ifndef XS_TDB_SPACE_H
#define XS_TDB_SPACE_H

#include <stddef.h>

/* Punch the pages of the free records of the closed tdb file at path:
 * the bytes released (0 when there were none, or on any doubt). */
size_t tdb_release_free_space(const char *path);

#endif
