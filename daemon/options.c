/*
 * The command line: options, their checks and the usage text.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "daemon/options.h"
#include "domains/domain.h"
#include "log/trace.h"
#include "protocol/wire.h"

/* The quotas' lines, from quota/quota.h's one list. */
static void usage_quotas(FILE *out)
{
	const char *indent = "                          ";
	size_t col;

	for (int k = 0; k < QUOTA_KINDS; k++) {
		char opt[32];

		if (!quota_option(k))
			continue;
		snprintf(opt, sizeof(opt), "--%s N", quota_long_option(k));
		fprintf(out, "  -%c, %-19s quota %s (default %u)\n",
			quota_option(k), opt, quota_name(k), quota_default(k));
	}
	fprintf(out, "  -Q, --quota NAME=N      any quota by name (0 is "
		"unlimited):\n%s", indent);
	col = strlen(indent);
	for (int k = 0; k < QUOTA_KINDS; k++) {
		size_t len = strlen(quota_name(k)) + 2;	/* and ", " */
		bool wrap = k && col + len > 78;

		fprintf(out, "%s%s%s", k ? "," : "", wrap ? "\n" : k ? " " : "",
			wrap ? indent : "");
		if (wrap)
			col = strlen(indent);
		fputs(quota_name(k), out);
		col += len;
	}
	fputc('\n', out);
}

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
"  -m, --master-domid ID   the domain this daemon runs in (default 0): its\n"
"                          socket clients and its own ring are that domain\n"
"  -p, --priv-domid ID     a domain, besides the master, with full access and\n"
"                          the right to manage domains (default: the master)\n"
"      --database FILE     keep the store in the tdb file FILE, so a restart\n"
"                          (after a crash too) loads it and serves the guests\n"
"                          again (default: xenstored.tdb in\n"
"                          $XENSTORED_ROOTDIR if set, else beside the socket)\n"
"      --no-database       keep the store in memory only (no live update)\n"
"      --live-update-image FILE\n"
"                          internal: continue the daemon that wrote FILE\n"
"  -L, --log-file FILE     log to FILE instead of stderr or syslog\n"
"      --log-level LEVEL   error, warning (the default), info or debug\n"
"  -v, --verbose           log more (info; twice: debug)\n"
"  -T, --trace-file FILE   trace every request, reply and connection to FILE\n"
"      --trace-control=[+-]SWITCH\n"
"                          turn a trace switch on or off: io, conn, and\n"
"                          upstream's obj (as conn), wrl, acc, tdb (logged\n"
"                          as having no effect here)\n",
		XS_DEFAULT_RUNDIR);
	usage_quotas(out);
	fprintf(out,
"  -q, --quota-soft memory=N\n"
"                          memory a domain may use before it is logged\n"
"  -P, --output-pid        print the process id on stdout once serving\n"
"  -V                      as --verbose (upstream's meaning)\n"
"  -H, -h, --help          show this help and exit\n"
"      --version           show the version and exit\n"
"\n"
"Accepted for upstream's sake, each logged with why it changes nothing:\n"
"  -D, --no-domain-init    -R, --no-recovery       -I, --internal-db [on|off]\n"
"  -K, --keep-orphans      -w, --timeout watch-event=N   -e, --event PORT\n"
"  -U, --live-update       (-m and -p are --master-domid and --priv-domid)\n"
"\n"
"Signals: SIGTERM and SIGINT stop the daemon; SIGHUP reopens the log and\n"
"trace files.  Exit status: 0 after a clean stop, 1 on a start-up or\n"
"run-time failure, 2 on a usage error.\n");
}

char *default_socket_path(void)
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
char *absolute_path(const char *path)
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

/* -w watch-event=N, the one kind of timeout upstream 4.17 has. */
static int parse_timeout(const char *arg, struct options *o)
{
	static const char kind[] = "watch-event=";
	unsigned long v;

	if (strncmp(arg, kind, sizeof(kind) - 1) != 0) {
		fprintf(stderr, "xenstored: --timeout: unknown timeout '%s' "
			"(watch-event=SECONDS)\n", arg);
		return -1;
	}
	if (!wire_parse_uint(arg + sizeof(kind) - 1, INT_MAX, &v)) {
		fprintf(stderr, "xenstored: --timeout: not a number of "
			"seconds: '%s'\n", arg);
		return -1;
	}
	o->watch_event_timeout = (unsigned int)v;
	o->watch_event_timeout_set = true;
	return 0;
}

void options_log_notes(const struct options *o)
{
	if (o->no_domain_init)
		log_warn("--no-domain-init: ignored: the domain table is set "
			 "up as always (without Xen only the socket is "
			 "served, which is what -D is for upstream)");
	if (o->no_recovery)
		log_info("--no-recovery: nothing to turn off: this daemon "
			 "never repairs the store on its own (xenstore-control "
			 "check only reports)");
	if (o->internal_db)
		log_info("--internal-db %s: no effect: the store is always in "
			 "memory; --database/--no-database choose the file "
			 "every change is committed to", o->internal_db);
	if (o->keep_orphans)
		log_warn("--keep-orphans: not supported: a dead domain's nodes "
			 "are deleted as always (keeping them for the next "
			 "domain with that id is XSA-419's risk)");
	if (o->watch_event_timeout_set)
		log_warn("--timeout watch-event=%u: no effect: events are "
			 "never dropped by age here; a watcher that stops "
			 "reading gets one event per watch once it drains "
			 "(docs/watches.md)", o->watch_event_timeout);
	if (o->event_port_set)
		log_warn("--event: ignored: it is the event channel of a "
			 "xenstore stub domain, and this daemon runs in dom0");
	if (o->live_update_flag && !o->live_update_image)
		log_warn("--live-update: ignored: this daemon continues its "
			 "predecessor from --live-update-image, not from "
			 "upstream's state file");
}

int parse_options(int argc, char **argv, struct options *o)
{
	enum {
		OPT_SOCKET = 256, OPT_LOG_LEVEL, OPT_TRACE_CONTROL, OPT_DATABASE,
		OPT_NO_DATABASE, OPT_LIVE_UPDATE_IMAGE, OPT_VERSION,
	};
	static const struct option fixed[] = {
		{ "no-fork", no_argument, NULL, 'N' },
		{ "pid-file", required_argument, NULL, 'F' },
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "master-domid", required_argument, NULL, 'm' },
		{ "priv-domid", required_argument, NULL, 'p' },
		{ "log-file", required_argument, NULL, 'L' },
		{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
		{ "verbose", no_argument, NULL, 'v' },
		{ "trace-file", required_argument, NULL, 'T' },
		{ "trace-control", required_argument, NULL, OPT_TRACE_CONTROL },
		{ "quota", required_argument, NULL, 'Q' },
		{ "quota-soft", required_argument, NULL, 'q' },
		{ "database", required_argument, NULL, OPT_DATABASE },
		{ "no-database", no_argument, NULL, OPT_NO_DATABASE },
		{ "live-update-image", required_argument, NULL,
		  OPT_LIVE_UPDATE_IMAGE },
		{ "help", no_argument, NULL, 'H' },
		{ "version", no_argument, NULL, OPT_VERSION },
		/* upstream's, kept so its scripts start us unchanged */
		{ "output-pid", no_argument, NULL, 'P' },
		{ "no-domain-init", no_argument, NULL, 'D' },
		{ "no-recovery", no_argument, NULL, 'R' },
		{ "internal-db", optional_argument, NULL, 'I' },
		{ "keep-orphans", no_argument, NULL, 'K' },
		{ "timeout", required_argument, NULL, 'w' },
		{ "event", required_argument, NULL, 'e' },
		{ "live-update", no_argument, NULL, 'U' },
	};
	/* The fixed options, then each quota's (quota/quota.h). */
	struct option longopts[sizeof(fixed) / sizeof(fixed[0]) + QUOTA_KINDS + 1];
	char shortopts[64] = "NF:L:vT:Q:q:HhVPDRI::Kw:e:Um:p:";
	size_t nlong = sizeof(fixed) / sizeof(fixed[0]), nshort = strlen(shortopts);
	enum quota_kind kind;
	int opt;

	memcpy(longopts, fixed, sizeof(fixed));
	for (int k = 0; k < QUOTA_KINDS; k++) {
		if (!quota_option(k))
			continue;
		longopts[nlong++] = (struct option){
			quota_long_option(k), required_argument, NULL,
			quota_option(k),
		};
		shortopts[nshort++] = (char)quota_option(k);
		shortopts[nshort++] = ':';
	}
	longopts[nlong] = (struct option){ NULL, 0, NULL, 0 };
	shortopts[nshort] = '\0';
	while ((opt = getopt_long(argc, argv, shortopts, longopts,
				  NULL)) != -1) {
		switch (opt) {
		case 'N': o->foreground = true; break;
		case 'F': o->pid_file = optarg; break;
		case OPT_SOCKET: o->socket_path = optarg; break;
		case 'm':
			if (parse_domid_option("--master-domid", optarg,
					       &o->master_domid) != 0)
				return -1;
			break;
		case 'p':
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
		case 'v':
		case 'V': o->verbose++; break;	/* -V: upstream's --verbose */
		case 'P': o->output_pid = true; break;
		case 'D': o->no_domain_init = true; break;
		case 'R': o->no_recovery = true; break;
		case 'K': o->keep_orphans = true; break;
		case 'U': o->live_update_flag = true; break;
		case 'I':
			/* Upstream documents "--internal-db off" with a space,
			 * which getopt leaves as a stray argument: take it. */
			if (!optarg && optind < argc &&
			    (strcmp(argv[optind], "on") == 0 ||
			     strcmp(argv[optind], "off") == 0))
				optarg = argv[optind++];
			if (optarg && strcmp(optarg, "on") != 0 &&
			    strcmp(optarg, "off") != 0) {
				fprintf(stderr, "xenstored: --internal-db: "
					"expected on or off: '%s'\n", optarg);
				return -1;
			}
			o->internal_db = optarg ? optarg : "on";
			break;
		case 'w':
			if (parse_timeout(optarg, o) != 0)
				return -1;
			break;
		case 'e': {
			unsigned long port;

			if (!wire_parse_uint(optarg, INT_MAX, &port)) {
				fprintf(stderr, "xenstored: --event: not an "
					"event channel port: '%s'\n", optarg);
				return -1;
			}
			o->event_port_set = true;
			break;
		}
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
		case 'Q':
		case 'q':
			if (parse_named_quota(o, opt == 'Q' ? "--quota"
							    : "--quota-soft",
					      optarg, opt == 'q') != 0)
				return -1;
			break;
		case 'H':
		case 'h': usage(stdout); exit(0);
		case OPT_VERSION:
			printf("xenstored %s\n", PACKAGE_VERSION);
			exit(0);
		default:
			if (quota_parse_option(opt, &kind)) {
				char opt_name[] = { '-', (char)opt, '\0' };

				if (set_quota_option(o, opt_name, kind,
						     optarg) != 0)
					return -1;
				break;
			}
			usage(stderr);
			return -1;
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
