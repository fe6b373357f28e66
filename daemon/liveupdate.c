/*
 * Live update: the image is schema/schema.h's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/liveupdate.h"
#include "log/log.h"
#include "domains/domain.h"
#include "persist/db.h"
#include "schema/schema.h"

#define LU_IMAGE_OPTION "--live-update-image"

static struct listener *lu_listener;
static int lu_argc;
static char **lu_argv;

/* The new program's image, between live_update_resume and _finish. */
static char *image_path;
static unsigned char *image;
static size_t image_len;
static struct reader image_rd;

static const char *image_file(struct server *srv, char *buf, size_t len)
{
	snprintf(buf, len, "%s.live-update", db_path(srv->db));
	return buf;
}

/* The OK the requester gets from the new program. */
static void ok_packet(const struct request *req, unsigned char out[19])
{
	struct xsd_sockmsg hdr = {
		.type = req->hdr.type, .req_id = req->hdr.req_id,
		.tx_id = req->hdr.tx_id, .len = 3,
	};

	memcpy(out, &hdr, sizeof(hdr));
	memcpy(out + sizeof(hdr), "OK", 3);
}

static bool write_image(struct server *srv, const char *path,
			struct conn *requester, const unsigned char *ok,
			size_t ok_len)
{
	struct evbuffer *b = evbuffer_new();
	const char *lpath = listener_path(lu_listener);
	struct schema_lu_head head = {
		.listen_fd = (uint32_t)listener_fd(lu_listener),
		.listen_path = lpath ? lpath : "",
	};
	struct writer w;
	struct conn *c;
	uint32_t nsock = 0;
	bool done = false;
	int fd;

	if (!b)
		return false;
	wr_init(&w, b);
	schema_write_lu_head(&w, &head);
	LIST_FOREACH(c, &srv->conns, link)
		nsock += !c->closing && socket_conn_fd(c) >= 0;
	schema_write_queues_count(&w, nsock);
	LIST_FOREACH(c, &srv->conns, link) {
		int sfd = socket_conn_fd(c);

		if (c->closing || sfd < 0)
			continue;
		schema_write_queues(&w, (uint32_t)sfd, c->in,
				    evbuffer_get_length(c->in), c->out,
				    c == requester ? ok : NULL,
				    c == requester ? ok_len : 0);
		server_save_conn_watches(srv, c, &w);
	}
	domains_save_conns(srv->domains, &w, requester, ok, ok_len);
	if (!wr_ok(&w))
		goto out;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto out;
	/* A write may be partial: go on until the buffer is empty. */
	done = true;
	while (done && evbuffer_get_length(b))
		done = evbuffer_write(b, fd) > 0;
	done = close(fd) == 0 && done;
out:
	evbuffer_free(b);
	return done;
}

/* Keep fd open across exec. */
static void inherit(int fd)
{
	int flags = fcntl(fd, F_GETFD);

	if (flags >= 0)
		fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
}

/* argv for the new program: cmdline split at spaces, or ours, minus any
 * earlier image option, plus the new one. */
static char **new_argv(const char *binary, const char *cmdline,
		       const char *path)
{
	size_t max = (size_t)lu_argc + 4 + (cmdline ? strlen(cmdline) : 0);
	char **v = calloc(max, sizeof(*v));
	size_t n = 0;

	if (!v)
		return NULL;
	v[n++] = (char *)binary;
	if (cmdline) {
		char *copy = strdup(cmdline), *save = NULL;

		if (!copy) {
			free(v);
			return NULL;
		}
		for (char *t = strtok_r(copy, " \t", &save); t;
		     t = strtok_r(NULL, " \t", &save))
			v[n++] = t;
	} else {
		for (int i = 1; i < lu_argc; i++) {
			if (strcmp(lu_argv[i], LU_IMAGE_OPTION) == 0) {
				i++;
				continue;
			}
			v[n++] = lu_argv[i];
		}
	}
	v[n++] = (char *)LU_IMAGE_OPTION;
	v[n++] = (char *)path;
	v[n] = NULL;
	return v;
}

static const char *lu_exec(struct server *srv, struct conn *c,
			   const struct request *req, const char *binary,
			   const char *cmdline);

void live_update_setup(struct server *srv, struct listener *l, int argc,
		       char **argv)
{
	lu_listener = l;
	lu_argc = argc;
	lu_argv = argv;
	srv->live_update.exec = lu_exec;
}

static const char *lu_exec(struct server *srv, struct conn *c,
			   const struct request *req, const char *binary,
			   const char *cmdline)
{
	static char path[4096];
	unsigned char ok[19];
	char **argv;
	struct conn *s;

	if (!srv->db)
		return "the state is kept in the database, and this daemon "
		       "runs with --no-database";
	image_file(srv, path, sizeof(path));
	ok_packet(req, ok);
	/* The tdb file takes the journals (a running compaction first): the
	 * new program, even an older one, finds the state in it alone. */
	if (db_checkpoint(srv->db) != 0 ||
	    !write_image(srv, path, c, ok, sizeof(ok))) {
		unlink(path);
		return "cannot write the live-update image";
	}
	argv = new_argv(binary, cmdline, path);
	if (!argv) {
		unlink(path);
		return "out of memory";
	}
	inherit(listener_fd(lu_listener));
	LIST_FOREACH(s, &srv->conns, link)
		if (socket_conn_fd(s) >= 0)
			inherit(socket_conn_fd(s));
	log_warn("live update: running %s", binary);
	log_close();
	execv(binary, argv);
	/* Still here: take the descriptors back and carry on. */
	log_reopen();
	log_error("live update: cannot run %s: %s", binary, strerror(errno));
	free(argv);
	unlink(path);
	return strerror(errno);
}

struct listener *live_update_resume(struct server *srv, const char *path)
{
	struct schema_lu_head head;
	struct listener *l;
	const char *lpath;
	uint32_t version = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) != 0 ||
	    !(image = malloc((size_t)st.st_size + 1)) ||
	    read(fd, image, (size_t)st.st_size) != st.st_size) {
		log_error("live update: cannot read the image %s: %s", path,
			  strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	close(fd);
	image_len = (size_t)st.st_size;
	image_path = strdup(path);
	rd_init(&image_rd, image, image_len);
	switch (schema_read_lu_head(&image_rd, &head, &version)) {
	case SCHEMA_OURS:
		break;
	case SCHEMA_OTHER_VERSION:
		log_error("live update: %s is an image of version %u, and this "
			  "program reads version %u only", path, version,
			  SCHEMA_LU_VERSION);
		return NULL;
	case SCHEMA_FOREIGN:
		log_error("live update: %s is not a live-update image", path);
		return NULL;
	}
	lpath = head.listen_path;
	if (fcntl((int)head.listen_fd, F_GETFD) < 0) {
		log_error("live update: the image names no open listening "
			  "socket");
		return NULL;
	}
	l = listener_resume(srv, (int)head.listen_fd, *lpath ? lpath : NULL);
	if (l)
		log_info("live update: serving %s again",
			 *lpath ? lpath : "the socket systemd passed");
	return l;
}

int live_update_finish(struct server *srv)
{
	struct schema_queues q;
	uint32_t n;
	int rc = -1;

	if (!schema_read_queues_count(&image_rd, &n)) {
		log_error("live update: the image is malformed");
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct conn *c;

		if (!schema_read_queues(&image_rd, &q) ||
		    fcntl((int)q.id, F_GETFD) < 0) {
			log_error("live update: a socket client without an "
				  "open descriptor");
			goto out;
		}
		c = socket_conn_resume(srv, (int)q.id);
		/* The socket transport appends what it reads: the
		 * saved bytes go in front of whatever it reads next. */
		if (!c || (q.in_len &&
			   evbuffer_prepend(c->in, q.in, q.in_len) != 0) ||
		    (q.out_len && evbuffer_add(c->out, q.out, q.out_len) != 0)) {
			log_error("live update: cannot restore a socket client: "
				  "out of memory");
			if (c)
				conn_close(c, "not restored");
			server_load_conn_watches(srv, NULL, &image_rd);
			continue;
		}
		if (server_load_conn_watches(srv, c, &image_rd) != 0) {
			log_error("live update: the watches of a socket client "
				  "are malformed");
			goto out;
		}
		c->out_total += q.out_len;
		if (q.out_len)
			c->tp->kick(c);
		c->restored = true;
		/* Requests it sent meanwhile wait in the socket or in c->in. */
		conn_handle_input(c);
	}
	if (domains_load_conns(srv->domains, &image_rd) != 0 ||
	    !rd_done(&image_rd)) {
		log_error("live update: the image is malformed");
		goto out;
	}
	log_info("live update: done");
	rc = 0;
out:
	unlink(image_path);
	free(image_path);
	free(image);
	image = NULL;
	return rc;
}
