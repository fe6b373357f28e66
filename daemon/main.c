/*
 * xenstored: start-up and the event loop (the options: daemon/options.c).
 *
 * Owns the process-wide state: the libevent base, the server (store and
 * connections), the listener, the pid file and signal handling.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "daemon/liveupdate.h"
#include "daemon/options.h"
#include "log/log.h"
#include "log/trace.h"
#include "daemon/socket.h"
#include "domains/domain.h"
#include "ops/ops.h"
#include "persist/db.h"

static int detach_fd = -1;

static int detach(void)
{
	int ready[2];
	ssize_t n;
	pid_t pid;
	char c = 0;

	if (pipe2(ready, O_CLOEXEC) != 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		close(ready[1]);
		do
			n = read(ready[0], &c, 1);
		while (n < 0 && errno == EINTR);
		/* No byte: the daemon died before it was ready. */
		_exit(n == 1 && c == 'R' ? 0 : 1);
	}
	close(ready[0]);
	detach_fd = ready[1];
	if (setsid() < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (chdir("/") != 0)
		return -1;
	return 0;
}

/* Tell the waiting parent we serve; stdio goes to /dev/null. */
static void detach_done(void)
{
	int fd = open("/dev/null", O_RDWR);

	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	if (write(detach_fd, "R", 1) != 1)
		log_warn("cannot tell the parent process we started: %s",
			 strerror(errno));
	close(detach_fd);
	detach_fd = -1;
}

/* Write our pid under a lock held for the life of the process. */
static int write_pid_file(const char *path)
{
	char buf[32];
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	int len;

	if (fd < 0) {
		log_error("cannot open the pid file %s: %s", path,
			  strerror(errno));
		return -1;
	}
	if (lockf(fd, F_TLOCK, 0) != 0) {
		log_error("pid file %s is locked: is xenstored already running?",
			  path);
		close(fd);
		return -1;
	}
	len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || write(fd, buf, (size_t)len) != len) {
		log_error("cannot write the pid file %s: %s", path,
			  strerror(errno));
		close(fd);
		return -1;
	}
	return fd;	/* kept open: the lock lives as long as we do */
}

/*
 * Memory freed goes back to the system.  glibc's default thresholds move:
 * once a large block is freed, later ones up to 32 MiB come from the
 * heap, and a heap keeps up to twice that at its top.  A compaction's
 * thread (persist/compact.c) frees its fold of a big journal, and its
 * arena then kept all of it: 24 MiB of RSS with a million nodes, which
 * malloc_trim does not return either (it trims a thread arena's free
 * chunks, not its top).  Fixed thresholds keep every block of 256 KiB or
 * more in a mapping of its own, and trim any heap's top past 128 KiB:
 * past 1 MiB, a host at rest with 100,000 nodes kept the top of that
 * thread's arena now and then, 0.65 MB (bench/load -R, 3 fills of 6);
 * WRITE and txn5, one or many in flight, did not move (bench/ab).
 */
static void return_freed_memory(void)
{
	mallopt(M_MMAP_THRESHOLD, 256 << 10);
	mallopt(M_TRIM_THRESHOLD, 128 << 10);
}

/* Every client is an fd: allow as many as the hard limit lets us. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			log_warn("cannot raise the open files limit: %s",
				 strerror(errno));
	}
}

/* systemd's STATUS= line: what we serve, refreshed while it changes. */
#define STATUS_PERIOD_SEC 2

static void notify_status(struct server *srv)
{
	static unsigned long last_conns = ULONG_MAX;
	static unsigned int last_domains = UINT_MAX;
	unsigned int ndomains = domains_count(srv->domains);

	if (srv->nconns == last_conns && ndomains == last_domains)
		return;
	last_conns = srv->nconns;
	last_domains = ndomains;
	sd_notifyf(0, "STATUS=serving %lu connection%s, %u domain%s",
		   srv->nconns, srv->nconns == 1 ? "" : "s", ndomains,
		   ndomains == 1 ? "" : "s");
}

static void status_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	notify_status(arg);
}

static void stop_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	log_info("signal %d: shutting down", (int)sig);
	event_base_loopbreak(arg);
}

/*
 * The loop: a turn runs the callbacks that are ready (EVLOOP_ONCE), then
 * the server commits once what they all changed and sends what they
 * queued.  The turn before the first sends what the start-up queued (a
 * live update's output).  0 once a signal stopped it, -1 if it failed.
 */
static int serve(struct event_base *base, struct server *srv)
{
	int rc;

	server_turn_end(srv);
	do {
		rc = event_base_loop(base, EVLOOP_ONCE);
		if (rc < 0)
			return -1;
		server_turn_end(srv);
	} while (rc == 0 && !event_base_got_break(base));
	return 0;
}

/* SIGHUP: the administrator rotated the log or trace file. */
static void reopen_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	if (log_reopen() != 0)
		log_error("cannot reopen the log file: %s", strerror(errno));
	if (trace_reopen() != 0)
		log_error("cannot reopen the trace file %s: %s",
			  trace_file_name(), strerror(errno));
	log_info("SIGHUP: log and trace files reopened");
}

/* Logging and tracing as the options say; -1 after a message on error. */
static int setup_logging(const struct options *o)
{
	char *path;
	int err;

	if (o->log_file) {
		path = absolute_path(o->log_file);
		err = !path || log_open(LOG_TO_FILE, path, o->log_level) != 0;
		if (err)
			fprintf(stderr, "xenstored: cannot open the log file "
				"%s: %s\n", o->log_file, strerror(errno));
		free(path);
		if (err)
			return -1;
	} else {
		log_open(LOG_TO_STDERR, NULL, o->log_level);
	}
	/* Without -T the name is the default one that `log on` opens. */
	path = o->trace_file ? absolute_path(o->trace_file)
			     : strdup(XS_TRACE_DIR "/xenstored-trace.log");
	err = !path || trace_set_file(path, o->trace_file != NULL) != 0;
	if (err)
		log_error("cannot open the trace file %s: %s",
			  o->trace_file, strerror(errno));
	free(path);
	for (unsigned int i = 0; !err && i < o->n_trace_controls; i++) {
		const char *sw = o->trace_controls[i];

		if (!trace_control(sw)) {
			log_error("--trace-control: no switch '%s' (io, conn, "
				  "obj, wrl, acc, tdb)", sw + 1);
			err = 1;
		} else if (trace_switch_note(sw)) {
			log_warn("--trace-control=%s: no effect: %s", sw,
				 trace_switch_note(sw));
		}
	}
	if (!err)
		options_log_notes(o);
	return err ? -1 : 0;
}

/*
 * The database in $XENSTORED_ROOTDIR (where upstream kept its tdb, and
 * what Debian's init script sets), else beside our socket, else in the
 * run directory.
 */
static char *default_database(const char *socket_path, bool socket_ours)
{
	const char *dir = getenv("XENSTORED_RUNDIR");
	const char *root = getenv("XENSTORED_ROOTDIR");
	const char *slash = strrchr(socket_path, '/');
	char *path;
	int n;

	if (root && *root) {
		mkdir(root, 0755);
		return asprintf(&path, "%s/xenstored.tdb", root) < 0 ? NULL
								      : path;
	}
	if (socket_ours && slash)
		return asprintf(&path, "%.*s/xenstored.tdb",
				(int)(slash - socket_path), socket_path) < 0
		       ? NULL : path;
	if (!dir || !*dir)
		dir = XS_DEFAULT_RUNDIR;
	mkdir(dir, 0755);
	n = asprintf(&path, "%s/xenstored.tdb", dir);
	return n < 0 ? NULL : path;
}

/*
 * Open the database and load what it holds: -1 (after a message) when it
 * exists but cannot be used, so nothing is overwritten.
 */
static int open_database(struct server *srv, const struct options *o,
			 const char *socket_path, bool *restored)
{
	char *path;
	bool restorable;

	*restored = false;
	if (o->no_database)
		return 0;
	path = o->database ? absolute_path(o->database)
			   : default_database(socket_path,
					      sd_listen_fds(0) <= 0);
	if (!path) {
		log_error("out of memory");
		return -1;
	}
	srv->db = db_open(path, &restorable);
	free(path);
	if (!srv->db)
		return -1;
	if (restorable && server_load(srv) != 0) {
		db_close(srv->db);
		srv->db = NULL;
		return -1;
	}
	db_follow(srv->db, &srv->store, !restorable);
	if (db_add_saver(srv->db, server_save_records, srv) != 0) {
		log_error("database: no room for the server's saver");
		db_close(srv->db);
		srv->db = NULL;
		return -1;
	}
	*restored = restorable;
	return 0;
}

/*
 * The listening socket: the one systemd passed (socket activation), else
 * our own at *socket_path.
 */
static struct listener *open_listener(struct server *srv,
				      const struct options *o,
				      char **socket_path)
{
	int n = sd_listen_fds(1);

	if (n > 1) {
		log_error("systemd passed %d sockets; expected one", n);
		return NULL;
	}
	if (n == 1) {
		if (sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1,
				      NULL, 0) <= 0) {
			log_error("the socket systemd passed is not a "
				  "listening Unix stream socket");
			return NULL;
		}
		free(*socket_path);
		*socket_path = strdup("the socket passed by systemd");
		return listener_adopt(srv, SD_LISTEN_FDS_START);
	}
	if (!o->socket_path && !getenv("XENSTORED_PATH"))
		mkdir(getenv("XENSTORED_RUNDIR") ? getenv("XENSTORED_RUNDIR")
						 : XS_DEFAULT_RUNDIR, 0755);
	return listener_open(srv, *socket_path);
}

int main(int argc, char **argv)
{
	static const int signals[] = { SIGTERM, SIGINT, SIGHUP };
	struct options o = { 0 };
	struct event_config *cfg;
	struct event_base *base;
	struct event *sig_ev[3] = { NULL };
	struct event *status_ev = NULL;
	struct listener *l;
	struct server srv;
	char *socket_path;
	bool restored;
	int pid_fd = -1, status = 1;

	return_freed_memory();
	if (parse_options(argc, argv, &o) != 0)
		return 2;
	if (setup_logging(&o) != 0)
		return 1;
	/* libevent's complaints belong in our log, not on a closed stderr. */
	event_set_log_callback(log_libevent);
	event_set_fatal_callback(log_libevent_fatal);
	socket_path = o.socket_path ? strdup(o.socket_path)
				    : default_socket_path();
	if (!socket_path)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();

	/* epoll: the cost of a turn follows active clients, not idle ones. */
	cfg = event_config_new();
	if (!cfg)
		return 1;
	event_config_avoid_method(cfg, "select");
	event_config_avoid_method(cfg, "poll");
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (!base) {
		log_error("cannot create the event loop");
		free(socket_path);
		return 1;
	}
	if (server_init(&srv, base, ops_dispatch) != 0) {
		log_error("cannot create the store: out of memory");
		goto out_base;
	}
	srv.master_domid = o.master_domid;
	srv.priv_domid = o.priv_domid_set ? o.priv_domid : o.master_domid;
	for (int k = 0; k < QUOTA_KINDS; k++)
		if (o.quota_given & (1u << k))
			srv.quotas.hard[k] = o.quota[k];
	if (o.soft_memory_given)
		srv.quotas.soft_memory = o.soft_memory;

	/* Before the socket exists: a SIGTERM from then on removes it. */
	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
		sig_ev[i] = evsignal_new(base, signals[i],
					 signals[i] == SIGHUP ? reopen_cb
							      : stop_cb,
					 base);
		if (!sig_ev[i] || evsignal_add(sig_ev[i], NULL) != 0) {
			log_error("cannot set up signal handling");
			goto out_server;
		}
	}
	l = o.live_update_image ? live_update_resume(&srv, o.live_update_image)
				: open_listener(&srv, &o, &socket_path);
	if (!l)
		goto out_server;
	live_update_setup(&srv, l, argc, argv);
	/* Before anyone is served: a database we cannot use stops us here
	 * (the socket goes again), and nothing overwrites it. */
	if (open_database(&srv, &o, socket_path, &restored) != 0)
		goto out_listener;
	/* After a live update we are the daemon already. */
	if (!o.foreground && !o.live_update_image && detach() != 0) {
		log_error("cannot daemonize: %s", strerror(errno));
		goto out_listener;
	}
	if (o.pid_file && (pid_fd = write_pid_file(o.pid_file)) < 0)
		goto out_listener;
	/* libevent re-inits the backend after fork only if asked. */
	if (!o.foreground && !o.live_update_image)
		event_reinit(base);

	/* After the fork: the event channel fd joins the child's loop. */
	srv.domains = domains_new(base, srv.db, srv.master_domid,
				  &srv.domain_hooks);
	if (!srv.domains) {
		log_error("cannot set up the domain table");
		goto out_signals;
	}
	server_waiting_set(&srv, domains_event_fd(srv.domains), NULL, true);
	if (db_add_saver(srv.db, domains_save_records, srv.domains) != 0) {
		log_error("database: no room for the domain table's saver");
		goto out_signals;
	}
	if (restored)
		domains_restore(srv.domains, !o.live_update_image);
	db_loaded_done(srv.db);
	if (db_notify(srv.db, base) != 0)
		log_warn("database: compactions are learnt of at commits only: "
			 "%s", strerror(errno));
	if (o.live_update_image && live_update_finish(&srv) != 0)
		log_error("live update: socket clients or queued bytes were "
			  "lost; the store and the guests are served");

	log_info("xenstored %s serving %s (%s backend)", PACKAGE_VERSION,
		 socket_path, event_base_get_method(base));
	/* -P: before detach_done() sends stdout to /dev/null. */
	if (o.output_pid) {
		printf("%ld\n", (long)getpid());
		fflush(stdout);
	}
	if (!o.foreground) {
		if (!o.live_update_image)
			detach_done();
		if (!o.log_file)
			log_open(LOG_TO_SYSLOG, NULL, o.log_level);
	}
	/* The socket and the rings are up: a Type=notify unit is started. */
	sd_notifyf(0, "READY=1\nMAINPID=%lu\nSTATUS=serving %s",
		   (unsigned long)getpid(), socket_path);
	/* Only under systemd: elsewhere nobody reads it, so no wake-ups. */
	if (getenv("NOTIFY_SOCKET")) {
		static const struct timeval period = { STATUS_PERIOD_SEC, 0 };

		status_ev = event_new(base, -1, EV_PERSIST, status_cb, &srv);
		if (!status_ev || event_add(status_ev, &period) != 0)
			log_warn("cannot refresh the systemd status line");
	}
	if (serve(base, &srv) < 0)
		log_error("event loop failed");
	else
		status = 0;
	sd_notify(0, "STOPPING=1");
	if (status_ev)
		event_free(status_ev);

out_signals:
	/* What shutting down undoes (connections, watches) stays saved. */
	srv.store.observer = NULL;
	db_close(srv.db);
	srv.db = NULL;
	domains_free(srv.domains);
	srv.domains = NULL;
out_listener:
	listener_close(l);
	/* Last: a pid file gone means the daemon let go of everything. */
	if (pid_fd >= 0) {
		unlink(o.pid_file);
		close(pid_fd);
	}
out_server:
	srv.store.observer = NULL;
	db_close(srv.db);
	srv.db = NULL;
	for (size_t i = 0; i < sizeof(sig_ev) / sizeof(sig_ev[0]); i++)
		if (sig_ev[i])
			event_free(sig_ev[i]);
	server_destroy(&srv);
out_base:
	event_base_free(base);
	free(socket_path);
	trace_stop();
	log_close();
	return status;
}
