/*
 * fuzz-journal: the journal reader (persist/journal.c journal_scan, the
 * frame and change decoders of schema/) against untrusted bytes: a
 * journal file someone else wrote or a disk damaged (libFuzzer target).
 *
 * Input: one byte that picks how the rest is read (its value modulo 2):
 *   0  the bytes are a whole journal file;
 *   1  they are the payload of one frame, which the target seals behind a
 *      journal head, so that the changes' decoder is reached without the
 *      fuzzer having to find a checksum.
 * Either way the bytes are copied to an allocation of exactly their
 * length, so ASan sees any read past them, and scanned twice: checked (as
 * a restart reads) and unchecked (as a compaction reads its own journal),
 * which must agree on every frame the checked scan accepts.  A frame
 * accepted must encode back to the very same bytes, head included: each
 * has one encoding.  The whole frames end within the input, a torn tail
 * after them; the fold of the changes holds the last change of each key,
 * found by fold_find.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "persist/journal.h"
#include "schema/schema.h"
#include "tests/fuzz/fuzz.h"

const char fuzz_target[] = "fuzz-journal";

static struct evbuffer *frame_out;	/* the frame being encoded again */
static struct writer w;

/* The salt of the journals mode 1 makes. */
#define FUZZ_SALT 0x66757a7a6a6f7572ull

struct scan_state {
	uint64_t salt;			/* the journal's head's */
	size_t frames, changes;
	struct fold fold;
	bool fold_ok;
};

static void restart_frame(void)
{
	static const unsigned char room[SCHEMA_FRAME_HEAD];

	evbuffer_drain(frame_out, evbuffer_get_length(frame_out));
	CHECK(evbuffer_add(frame_out, room, sizeof(room)) == 0, "out of memory");
	wr_init(&w, frame_out);
}

static int on_change(const struct schema_change *c, void *arg)
{
	struct scan_state *st = arg;

	CHECK(c->key_len >= 1 && c->key_len <= SCHEMA_JOURNAL_KEY_MAX,
	      "a key of %u bytes accepted", c->key_len);
	schema_write_change(&w, c);
	st->changes++;
	if (st->fold_ok && fold_add(&st->fold, c) != 0)
		st->fold_ok = false;
	return 0;
}

static int on_frame(const void *bytes, size_t len, void *arg)
{
	struct scan_state *st = arg;
	size_t n = evbuffer_get_length(frame_out);
	unsigned char *q = evbuffer_pullup(frame_out, -1);

	CHECK(wr_ok(&w) && q, "no memory to encode");
	schema_seal_frame(q, q + SCHEMA_FRAME_HEAD,
			  (uint32_t)(n - SCHEMA_FRAME_HEAD), st->salt);
	CHECK(n == len && memcmp(q, bytes, n) == 0,
	      "frame %zu accepted, but encodes to other bytes (%zu, not %zu)",
	      st->frames, n, len);
	st->frames++;
	restart_frame();
	return 0;
}

/* The changes of the frames the unchecked scan hands over, in order. */
static int count_change(const struct schema_change *c, void *arg)
{
	(void)c;
	++*(size_t *)arg;
	return 0;
}

static void scan(const unsigned char *p, size_t len)
{
	struct scan_state st = { .fold_ok = true };
	struct journal_scan s, u;
	size_t unchecked = 0;
	struct reader r;
	uint32_t version;
	bool cut;

	/* The salt frames are sealed with again (none when it is not our
	 * head: then no frame is accepted). */
	rd_init(&r, p, len);
	(void)schema_read_journal_head(&r, &version, &st.salt, &cut);
	fold_init(&st.fold);
	restart_frame();
	CHECK(journal_scan(p, len, &s, true, on_change, on_frame, &st) == 0,
	      "the scan stopped without a callback asking");
	CHECK(s.whole <= len, "whole frames end past the input");
	if (s.state == JOURNAL_WHOLE && s.version >= SCHEMA_JOURNAL_VERSION_SALTED) {
		/* Read to its end, or to the zeros a live journal allocates
		 * ahead of its frames, or to an earlier life's bytes: no
		 * frame of its salt after its whole frames. */
		for (size_t i = s.whole; i < len; i++)
			CHECK(!schema_frame_at(p + i, len - i, s.salt),
			      "a frame of the journal's salt at %zu, after "
			      "its whole frames (%zu)", i, s.whole);
	} else if (s.state == JOURNAL_WHOLE) {
		/* Read to its end, or to the zeros a live journal allocates
		 * ahead of its frames. */
		bool rest_zero = true;

		for (size_t i = s.whole; i < len && rest_zero; i++)
			rest_zero = p[i] == 0;
		CHECK(s.whole == 0 || rest_zero, "a whole journal not read to its end");
	}
	if (s.state != JOURNAL_BAD) {
		CHECK(s.frames == st.frames && s.changes == st.changes,
		      "frames or changes miscounted");
		/* A journal this daemon wrote is read unchecked: the same
		 * frames, at least (a frame whose payload's checksum fails
		 * may pass unchecked, and nothing after it is looked at). */
		CHECK(journal_scan(p, s.whole, &u, false, count_change, NULL,
				   &unchecked) == 0, "unchecked scan stopped");
		CHECK(u.state != JOURNAL_BAD && u.frames == s.frames &&
		      unchecked == s.changes,
		      "an unchecked scan disagrees on the whole frames");
		if (st.fold_ok) {
			CHECK(st.fold.count <= st.changes, "more keys than changes");
			for (size_t i = 0; i < st.fold.count; i++)
				CHECK(fold_find(&st.fold, st.fold.v[i].c.key,
						st.fold.v[i].c.key_len) ==
				      &st.fold.v[i], "fold_find misses a key");
		}
	}
	fold_free(&st.fold);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	frame_out = evbuffer_new();
	CHECK(frame_out, "out of memory");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *p;
	size_t len;

	if (size < 1)
		return 0;
	if (data[0] % 2 == 0) {
		p = after_mode_byte(data, size, &len);
	} else {
		/* A head, then one frame of these bytes, sealed. */
		struct evbuffer *b = evbuffer_new();
		struct writer hw;
		size_t head;

		CHECK(b, "out of memory");
		wr_init(&hw, b);
		schema_write_journal_head(&hw, SCHEMA_JOURNAL_VERSION, FUZZ_SALT);
		head = evbuffer_get_length(b);
		len = head + SCHEMA_FRAME_HEAD + size - 1;
		p = malloc(len);
		CHECK(wr_ok(&hw) && p, "out of memory");
		CHECK(evbuffer_remove(b, p, head) == (int)head, "head");
		memcpy(p + head + SCHEMA_FRAME_HEAD, data + 1, size - 1);
		schema_seal_frame(p + head, p + head + SCHEMA_FRAME_HEAD,
				  (uint32_t)(size - 1), FUZZ_SALT);
		evbuffer_free(b);
	}
	scan(p, len);
	free(p);
	return 0;
}
