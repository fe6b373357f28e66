/*
 * A finished checkpoint's free space given back (tdb_space.h).
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "persist/tdb_space.h"

/* tdb 1.x's on-disk facts. */
#define TDB_FOOD "TDB file\n"
#define TDB_FORMAT_VERSION (0x26011967u + 6)
#define TDB_FREE_MAGIC (~0x26011999u)
#define TDB_HEADER_LEN 168		/* the header; the free list's head
					 * follows it */
#define TDB_VERSION_AT 32
#define TDB_RECOVERY_AT 44
#define TDB_RECORD_HEAD 24		/* next, rec_len, key_len,
					 * data_len, full_hash, magic */
#define TDB_TAILER 4			/* a record's last 4 bytes */

static bool read_u32s(int fd, uint64_t at, uint32_t *v, size_t n)
{
	return pread(fd, v, n * sizeof(*v), (off_t)at) ==
	       (ssize_t)(n * sizeof(*v));
}

size_t tdb_release_free_space(const char *path)
{
	char head[TDB_HEADER_LEN];
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), size, at;
	uint32_t next, rec[TDB_RECORD_HEAD / 4];
	size_t released = 0, steps = 0;
	struct stat sb;
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return 0;
	if (fstat(fd, &sb) != 0 ||
	    pread(fd, head, sizeof(head), 0) != (ssize_t)sizeof(head) ||
	    memcmp(head, TDB_FOOD, sizeof(TDB_FOOD)) != 0)
		goto out;
	{
		uint32_t version, recovery;

		memcpy(&version, head + TDB_VERSION_AT, sizeof(version));
		memcpy(&recovery, head + TDB_RECOVERY_AT, sizeof(recovery));
		/* Another version or byte order, or a transaction's
		 * recovery area (whose free-looking space is not ours). */
		if (version != TDB_FORMAT_VERSION || recovery != 0)
			goto out;
	}
	size = (uint64_t)sb.st_size;
	if (!read_u32s(fd, TDB_HEADER_LEN, &next, 1))
		goto out;
	/* Each record at most once: the list cannot be longer than the
	 * file has room for heads. */
	for (at = next; at; at = rec[0]) {
		uint64_t start, end;

		if (++steps > size / TDB_RECORD_HEAD || at % 4 ||
		    at < TDB_HEADER_LEN || at + TDB_RECORD_HEAD > size ||
		    !read_u32s(fd, at, rec, TDB_RECORD_HEAD / 4) ||
		    rec[5] != TDB_FREE_MAGIC ||
		    at + TDB_RECORD_HEAD + rec[1] > size ||
		    rec[1] < TDB_TAILER)
			break;
		/* The whole pages between its head and its tailer. */
		start = (at + TDB_RECORD_HEAD + page - 1) / page * page;
		end = (at + TDB_RECORD_HEAD + rec[1] - TDB_TAILER) / page * page;
		if (end > start &&
		    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)start, (off_t)(end - start)) == 0)
			released += (size_t)(end - start);
	}
out:
	close(fd);
	return released;
}
