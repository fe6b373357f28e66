/*
 * xenstored: start-up, options and the event loop.
 *
 * Owns the process-wide state: the libevent base, the server (store and
 * connections), the listener, the pid file and signal handling.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
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
#include "log/log.h"
#include "log/trace.h"
#include "daemon/socket.h"
#include "domains/domain.h"
#include "ops/ops.h"
#include "persist/db.h"

struct options {
	bool foreground;
	int verbose;
	bool log_level_set;
	enum log_level log_level;
	const char *log_file;
	const char *pid_file;
	const char *socket_path;
	const char *trace_file;
	const char *database;		/* NULL: the default one */
	bool no_database;
	const char *live_update_image;	/* set by the program we replace */
	const char *trace_controls[8];
	unsigned int n_trace_controls;
	unsigned int master_domid;
	unsigned int priv_domid;
	bool priv_domid_set;
	unsigned int quota[QUOTA_KINDS];	/* given on the command line */
	unsigned int quota_given;		/* bit per kind */
	unsigned int soft_memory;
	bool soft_memory_given;
};

static void usage(FILE *out)
{
	fprintf(out,
"Usage: xenstored [options]\n"
"Serve the Xenstore database to the toolstack and to Xen guests.\n"
"\n"
"  -N, --no-fork           stay in the foreground, log to stderr\n"
"  -F, --pid-file FILE     write the process id to FILE (locked while running)\n"
"      --socket PATH       Unix socket to listen on (default: $XENSTORED_PATH,\n"
"                          else $XENSTORED_RUNDIR/socket, else\n"
"                          %s/socket); a socket passed by systemd\n"
"                          (LISTEN_FDS) is used instead when there is one\n"
"      --master-domid ID   the domain this daemon runs in (default 0): its\n"
"                          socket clients and its own ring are that domain\n"
"      --priv-domid ID     a domain, besides the master, with full access and\n"
"                          the right to manage domains (default: the master)\n"
"      --database FILE     keep the store in the tdb file FILE, so a restart\n"
"                          (after a crash too) loads it and serves the guests\n"
"                          again (default: xenstored.tdb beside the socket)\n"
"      --no-database       keep the store in memory only (no live update)\n"
"      --live-update-image FILE\n"
"                          internal: continue the daemon that wrote FILE\n"
"  -L, --log-file FILE     log to FILE instead of stderr or syslog\n"
"      --log-level LEVEL   error, warning (the default), info or debug\n"
"  -v, --verbose           log more (info; twice: debug)\n"
"  -T, --trace-file FILE   trace every request, reply and connection to FILE\n"
"      --trace-control=[+-]SWITCH\n"
"                          turn a trace switch on or off: io, conn\n"
"  -E, --entry-nb N        nodes a domain may own (quota nodes, default 1000)\n"
"  -S, --entry-size N      bytes of one node (node-size, default 2048)\n"
"  -W, --watch-nb N        watches per domain (watches, default 128)\n"
"  -t, --transaction N     open transactions per domain (default 10)\n"
"  -A, --perm-nb N         entries of a permission list (permissions, 5)\n"
"  -M, --path-max N        path length below a domain's home (default 2048)\n"
"  -Q, --quota NAME=N      any quota by name: nodes, watches, transactions,\n"
"                          outstanding, transaction-nodes, memory, node-size,\n"
"                          path-max, permissions; 0 is unlimited\n"
"  -q, --quota-soft memory=N\n"
"                          memory a domain may use before it is logged\n"
"  -H, -h, --help          show this help and exit\n"
"  -V, --version           show the version and exit\n"
"\n"
"Signals: SIGTERM and SIGINT stop the daemon; SIGHUP reopens the log and\n"
"trace files.  Exit status: 0 after a clean stop, 1 on a start-up or\n"
"run-time failure, 2 on a usage error.\n",
		XS_DEFAULT_RUNDIR);
}

static char *default_socket_path(void)
{
	const char *env = getenv("XENSTORED_PATH");
	char *path;

	if (env && *env)
		return strdup(env);
	env = getenv("XENSTORED_RUNDIR");
	if (!env || !*env)
		env = XS_DEFAULT_RUNDIR;
	if (asprintf(&path, "%s/socket", env) < 0)
		return NULL;
	return path;
}

/* path made absolute against the current directory: we chdir("/") later,
 * and reopen log files by name. */
static char *absolute_path(const char *path)
{
	char *cwd, *abs;

	if (path[0] == '/')
		return strdup(path);
	cwd = getcwd(NULL, 0);
	if (!cwd)
		return NULL;
	if (asprintf(&abs, "%s/%s", cwd, path) < 0)
		abs = NULL;
	free(cwd);
	return abs;
}

static int parse_domid_option(const char *name, const char *arg,
			      unsigned int *out)
{
	unsigned long v;

	if (!wire_parse_uint(arg, DOMAIN_ID_LIMIT - 1, &v)) {
		fprintf(stderr, "xenstored: %s: not a domain id: '%s'\n", name,
			arg);
		return -1;
	}
	*out = (unsigned int)v;
	return 0;
}

/* A quota value: a decimal below UINT_MAX. */
static int parse_quota_value(const char *opt, const char *arg,
			     unsigned int *out)
{
	unsigned long v;

	if (!wire_parse_uint(arg, UINT_MAX - 1, &v)) {
		fprintf(stderr, "xenstored: %s: not a quota value: '%s'\n",
			opt, arg);
		return -1;
	}
	*out = (unsigned int)v;
	return 0;
}

static int set_quota_option(struct options *o, const char *opt,
			    enum quota_kind kind, const char *arg)
{
	if (parse_quota_value(opt, arg, &o->quota[kind]) != 0)
		return -1;
	o->quota_given |= 1u << kind;
	return 0;
}

/* -Q name=N and -q memory=N. */
static int parse_named_quota(struct options *o, const char *opt,
			     const char *arg, bool soft)
{
	const char *eq = strchr(arg, '=');
	char name[32];
	enum quota_kind kind;

	if (!eq || (size_t)(eq - arg) >= sizeof(name)) {
		fprintf(stderr, "xenstored: %s: expected NAME=VALUE: '%s'\n",
			opt, arg);
		return -1;
	}
	memcpy(name, arg, (size_t)(eq - arg));
	name[eq - arg] = '\0';
	if (soft) {
		if (strcmp(name, "memory") != 0) {
			fprintf(stderr, "xenstored: %s: only memory has a "
				"soft quota, not '%s'\n", opt, name);
			return -1;
		}
		o->soft_memory_given = true;
		return parse_quota_value(opt, eq + 1, &o->soft_memory);
	}
	if (!quota_parse_name(name, &kind)) {
		fprintf(stderr, "xenstored: %s: no quota named '%s'\n", opt,
			name);
		return -1;
	}
	return set_quota_option(o, opt, kind, eq + 1);
}

static int parse_options(int argc, char **argv, struct options *o)
{
	enum {
		OPT_SOCKET = 256, OPT_MASTER_DOMID, OPT_PRIV_DOMID,
		OPT_LOG_LEVEL, OPT_TRACE_CONTROL, OPT_DATABASE,
		OPT_NO_DATABASE, OPT_LIVE_UPDATE_IMAGE,
	};
	static const struct option longopts[] = {
		{ "no-fork", no_argument, NULL, 'N' },
		{ "pid-file", required_argument, NULL, 'F' },
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "master-domid", required_argument, NULL, OPT_MASTER_DOMID },
		{ "priv-domid", required_argument, NULL, OPT_PRIV_DOMID },
		{ "log-file", required_argument, NULL, 'L' },
		{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
		{ "verbose", no_argument, NULL, 'v' },
		{ "trace-file", required_argument, NULL, 'T' },
		{ "trace-control", required_argument, NULL, OPT_TRACE_CONTROL },
		{ "entry-nb", required_argument, NULL, 'E' },
		{ "entry-size", required_argument, NULL, 'S' },
		{ "watch-nb", required_argument, NULL, 'W' },
		{ "transaction", required_argument, NULL, 't' },
		{ "perm-nb", required_argument, NULL, 'A' },
		{ "path-max", required_argument, NULL, 'M' },
		{ "quota", required_argument, NULL, 'Q' },
		{ "quota-soft", required_argument, NULL, 'q' },
		{ "database", required_argument, NULL, OPT_DATABASE },
		{ "no-database", no_argument, NULL, OPT_NO_DATABASE },
		{ "live-update-image", required_argument, NULL,
		  OPT_LIVE_UPDATE_IMAGE },
		{ "help", no_argument, NULL, 'H' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "NF:L:vT:E:S:W:t:A:M:Q:q:HhV", longopts,
				  NULL)) != -1) {
		switch (opt) {
		case 'N': o->foreground = true; break;
		case 'F': o->pid_file = optarg; break;
		case OPT_SOCKET: o->socket_path = optarg; break;
		case OPT_MASTER_DOMID:
			if (parse_domid_option("--master-domid", optarg,
					       &o->master_domid) != 0)
				return -1;
			break;
		case OPT_PRIV_DOMID:
			if (parse_domid_option("--priv-domid", optarg,
					       &o->priv_domid) != 0)
				return -1;
			o->priv_domid_set = true;
			break;
		case 'L': o->log_file = optarg; break;
		case OPT_DATABASE: o->database = optarg; break;
		case OPT_NO_DATABASE: o->no_database = true; break;
		case OPT_LIVE_UPDATE_IMAGE: o->live_update_image = optarg; break;
		case OPT_LOG_LEVEL:
			if (!log_parse_level(optarg, &o->log_level)) {
				fprintf(stderr, "xenstored: --log-level: "
					"not a level: '%s'\n", optarg);
				return -1;
			}
			o->log_level_set = true;
			break;
		case 'v': o->verbose++; break;
		case 'T': o->trace_file = optarg; break;
		case OPT_TRACE_CONTROL:
			if (o->n_trace_controls == 8 ||
			    (optarg[0] != '+' && optarg[0] != '-')) {
				fprintf(stderr, "xenstored: --trace-control: "
					"expected +SWITCH or -SWITCH: '%s'\n",
					optarg);
				return -1;
			}
			o->trace_controls[o->n_trace_controls++] = optarg;
			break;
		case 'E': case 'S': case 'W': case 't': case 'A': case 'M': {
			static const char letters[] = "ESWtAM";
			static const enum quota_kind kinds[] = {
				QUOTA_NODES, QUOTA_NODE_SIZE, QUOTA_WATCHES,
				QUOTA_TRANSACTIONS, QUOTA_PERMS, QUOTA_PATH_MAX,
			};
			char opt_name[] = { '-', (char)opt, '\0' };

			if (set_quota_option(o, opt_name,
					     kinds[strchr(letters, opt) - letters],
					     optarg) != 0)
				return -1;
			break;
		}
		case 'Q':
		case 'q':
			if (parse_named_quota(o, opt == 'Q' ? "--quota"
							    : "--quota-soft",
					      optarg, opt == 'q') != 0)
				return -1;
			break;
		case 'H':
		case 'h': usage(stdout); exit(0);
		case 'V': printf("xenstored %s\n", PACKAGE_VERSION); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "xenstored: unexpected argument '%s'\n",
			argv[optind]);
		usage(stderr);
		return -1;
	}
	if (!o->log_level_set)
		o->log_level = o->verbose >= 2 ? LOG_LVL_DEBUG
			       : o->verbose == 1 ? LOG_LVL_INFO : LOG_LVL_WARN;
	return 0;
}

/*
 * Detach from the terminal; returns in the grandchild only, which must
 * call detach_done() once it serves.  Until then the first process waits,
 * so its exit status says whether the daemon started (0) or not (1), and
 * start-up errors still reach stderr.
 */
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

static void stop_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	log_info("signal %d: shutting down", (int)sig);
	event_base_loopbreak(arg);
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
		if (!trace_control(o->trace_controls[i])) {
			log_error("--trace-control: no switch '%s' (io, conn)",
				  o->trace_controls[i] + 1);
			err = 1;
		}
	}
	return err ? -1 : 0;
}

/* The database beside our socket, or in the run directory. */
static char *default_database(const char *socket_path, bool socket_ours)
{
	const char *dir = getenv("XENSTORED_RUNDIR");
	const char *slash = strrchr(socket_path, '/');
	char *path;
	int n;

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
	srv->db = db_open(path, srv->base, &restorable);
	free(path);
	if (!srv->db)
		return -1;
	if (restorable && server_load(srv) != 0) {
		db_close(srv->db);
		srv->db = NULL;
		return -1;
	}
	db_follow(srv->db, &srv->store, !restorable);
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
	struct listener *l;
	struct server srv;
	char *socket_path;
	bool restored;
	int pid_fd = -1, status = 1;

	if (parse_options(argc, argv, &o) != 0)
		return 2;
	if (setup_logging(&o) != 0)
		return 1;
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
	if (restored)
		domains_restore(srv.domains, !o.live_update_image);
	db_loaded_done(srv.db);
	if (o.live_update_image && live_update_finish(&srv) != 0)
		log_error("live update: socket clients or queued bytes were "
			  "lost; the store and the guests are served");

	log_info("xenstored %s serving %s (%s backend)", PACKAGE_VERSION,
		 socket_path, event_base_get_method(base));
	if (!o.foreground) {
		if (!o.live_update_image)
			detach_done();
		if (!o.log_file)
			log_open(LOG_TO_SYSLOG, NULL, o.log_level);
	}
	/* The socket and the rings are up: a Type=notify unit is started. */
	sd_notifyf(0, "READY=1\nMAINPID=%lu\nSTATUS=serving %s",
		   (unsigned long)getpid(), socket_path);
	if (event_base_dispatch(base) < 0)
		log_error("event loop failed");
	else
		status = 0;
	sd_notify(0, "STOPPING=1");

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
