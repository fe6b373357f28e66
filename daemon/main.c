/*
 * xenstored: start-up, options and the event loop.
 *
 * Owns the process-wide state: the libevent base, the server (store and
 * connections), the listener, the pid file and signal handling.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "daemon/log.h"
#include "daemon/socket.h"
#include "domains/domain.h"
#include "ops/ops.h"

struct options {
	bool foreground;
	int verbose;
	const char *pid_file;
	const char *socket_path;
	unsigned int master_domid;
	unsigned int priv_domid;
	bool priv_domid_set;
};

static void usage(FILE *out)
{
	fprintf(out,
"Usage: xenstored [options]\n"
"Serve the Xenstore database to the toolstack and to Xen guests.\n"
"\n"
"  -N, --no-fork         stay in the foreground, log to stderr\n"
"  -F, --pid-file FILE   write the process id to FILE (locked while running)\n"
"      --socket PATH     Unix socket to listen on (default: $XENSTORED_PATH,\n"
"                        else $XENSTORED_RUNDIR/socket, else\n"
"                        %s/socket)\n"
"      --master-domid ID the domain this daemon runs in (default 0): its\n"
"                        socket clients and its own ring are that domain\n"
"      --priv-domid ID   a domain, besides the master, with full access and\n"
"                        the right to manage domains (default: the master)\n"
"  -v, --verbose         log more (repeat for debug messages)\n"
"  -H, -h, --help        show this help and exit\n"
"  -V, --version         show the version and exit\n",
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

static int parse_options(int argc, char **argv, struct options *o)
{
	enum { OPT_SOCKET = 256, OPT_MASTER_DOMID, OPT_PRIV_DOMID };
	static const struct option longopts[] = {
		{ "no-fork", no_argument, NULL, 'N' },
		{ "pid-file", required_argument, NULL, 'F' },
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "master-domid", required_argument, NULL, OPT_MASTER_DOMID },
		{ "priv-domid", required_argument, NULL, OPT_PRIV_DOMID },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'H' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "NF:vHhV", longopts, NULL)) != -1) {
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
		case 'v': o->verbose++; break;
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
	return 0;
}

/* Detach from the terminal; returns in the grandchild only. */
static int daemonize(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (chdir("/") != 0)
		return -1;
	fd = open("/dev/null", O_RDWR);
	if (fd < 0)
		return -1;
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
	return 0;
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

int main(int argc, char **argv)
{
	struct options o = { 0 };
	struct event_config *cfg;
	struct event_base *base;
	struct event *sigterm = NULL, *sigint = NULL;
	struct listener *l;
	struct server srv;
	char *socket_path;
	int pid_fd = -1, status = 1;

	if (parse_options(argc, argv, &o) != 0)
		return 2;
	log_open(!o.foreground, o.verbose >= 2 ? LOG_LVL_DEBUG
			       : o.verbose == 1 ? LOG_LVL_INFO : LOG_LVL_WARN);
	socket_path = o.socket_path ? strdup(o.socket_path)
				    : default_socket_path();
	if (!socket_path)
		return 1;
	if (!o.socket_path && !getenv("XENSTORED_PATH"))
		mkdir(getenv("XENSTORED_RUNDIR") ? getenv("XENSTORED_RUNDIR")
						 : XS_DEFAULT_RUNDIR, 0755);
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
	if (server_init(&srv, base) != 0) {
		log_error("cannot create the store: out of memory");
		goto out_base;
	}
	srv.master_domid = o.master_domid;
	srv.priv_domid = o.priv_domid_set ? o.priv_domid : o.master_domid;
	l = listener_open(&srv, socket_path);
	if (!l)
		goto out_server;
	if (!o.foreground && daemonize() != 0) {
		log_error("cannot daemonize: %s", strerror(errno));
		goto out_listener;
	}
	if (o.pid_file && (pid_fd = write_pid_file(o.pid_file)) < 0)
		goto out_listener;
	/* libevent re-inits the backend after fork only if asked. */
	if (!o.foreground)
		event_reinit(base);

	/* After the fork: the event channel fd joins the child's loop. */
	srv.domains = domains_new(&srv);
	if (!srv.domains) {
		log_error("cannot set up the domain table");
		goto out_signals;
	}

	sigterm = evsignal_new(base, SIGTERM, stop_cb, base);
	sigint = evsignal_new(base, SIGINT, stop_cb, base);
	if (!sigterm || !sigint || evsignal_add(sigterm, NULL) ||
	    evsignal_add(sigint, NULL)) {
		log_error("cannot set up signal handling");
		goto out_signals;
	}
	log_info("xenstored %s serving %s (%s backend)", PACKAGE_VERSION,
		 socket_path, event_base_get_method(base));
	if (event_base_dispatch(base) < 0)
		log_error("event loop failed");
	else
		status = 0;

out_signals:
	domains_free(srv.domains);
	srv.domains = NULL;
	if (sigterm)
		event_free(sigterm);
	if (sigint)
		event_free(sigint);
	if (pid_fd >= 0) {
		unlink(o.pid_file);
		close(pid_fd);
	}
out_listener:
	listener_close(l);
out_server:
	server_destroy(&srv);
out_base:
	event_base_free(base);
	free(socket_path);
	return status;
}
