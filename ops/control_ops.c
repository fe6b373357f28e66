/*
 * CONTROL: the administrator's commands, in the forms xenstore-control
 * sends (the command and its arguments as NUL-terminated strings).  An
 * unknown command or a wrong argument is EINVAL; xenstore-control then
 * asks for `help` and shows it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log/log.h"
#include "log/trace.h"
#include "domains/domain.h"
#include "ops/ops_impl.h"

/* The most arguments a command takes, plus room to notice one too many. */
#define CONTROL_ARGS_MAX 8
/* Problems `check` lists in its reply; the log gets them all. */
#define CHECK_REPORT_MAX 20

struct control_cmd {
	const char *name;
	const char *usage;	/* the arguments, as `help` shows them */
	int (*fn)(struct op_call *call, const char **argv, unsigned int argc);
};

struct check_report {
	struct reply *reply;
	unsigned int listed;
};

static void report_problem(const char *what, const char *path, void *arg)
{
	struct check_report *r = arg;

	log_error("store check: %s: %s", path, what);
	if (r->listed++ < CHECK_REPORT_MAX)
		reply_printf(r->reply, "%s: %s\n", path, what);
}

/* Verify the tree's invariants: "OK", or the problems found. */
static int control_check(struct op_call *call, const char **argv,
			 unsigned int argc)
{
	struct check_report r = { .reply = call->reply };
	unsigned int problems;

	(void)argv;
	if (argc)
		return EINVAL;
	problems = store_check(&call->srv->store, report_problem, &r);
	if (!problems) {
		log_info("store check: %lu nodes, no problems",
			 store_count(&call->srv->store));
		return op_ok(call);
	}
	log_error("store check found %u problems", problems);
	if (problems > CHECK_REPORT_MAX)
		reply_printf(call->reply, "... %u more\n",
			     problems - CHECK_REPORT_MAX);
	reply_printf(call->reply, "%u problems in %lu nodes\n", problems,
		     store_count(&call->srv->store));
	reply_append(call->reply, "", 1);
	return 0;
}

static int control_print(struct op_call *call, const char **argv,
			 unsigned int argc)
{
	if (argc != 1)
		return EINVAL;
	/* Whatever the level: the administrator asked for it. */
	log_write(LOG_LVL_WARN, "control: %s", argv[0]);
	trace_note(argv[0]);
	return op_ok(call);
}

/* log [on|off|+switch|-switch]...: the access trace; alone, its state. */
static int control_log(struct op_call *call, const char **argv,
		       unsigned int argc)
{
	char switches[64];

	for (unsigned int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "on") == 0) {
			if (trace_start() != 0) {
				int err = errno;

				if (trace_file_name())
					log_warn("cannot open the trace file "
						 "%s: %s", trace_file_name(),
						 strerror(err));
				else
					log_warn("log on: no trace file "
						 "(logfile PATH or -T sets "
						 "one)");
				return err;
			}
		} else if (strcmp(argv[i], "off") == 0) {
			trace_stop();
		} else if ((argv[i][0] != '+' && argv[i][0] != '-') ||
			   !trace_control(argv[i])) {
			return EINVAL;
		} else if (trace_switch_note(argv[i])) {
			log_warn("log %s: no effect: %s", argv[i],
				 trace_switch_note(argv[i]));
		}
	}
	if (argc)
		return op_ok(call);
	trace_describe(switches, sizeof(switches));
	reply_printf(call->reply, "trace %s, file %s, switches %s\n",
		     trace_active ? "on" : "off",
		     trace_file_name() ? trace_file_name() : "(none)",
		     switches);
	reply_append(call->reply, "", 1);
	return 0;
}

/* logfile <file>: trace to file from now on (relative: under XS_TRACE_DIR). */
static int control_logfile(struct op_call *call, const char **argv,
			   unsigned int argc)
{
	char *path;
	int err = 0;

	if (argc != 1 || !argv[0][0])
		return EINVAL;
	if (argv[0][0] == '/')
		path = strdup(argv[0]);
	else if (asprintf(&path, "%s/%s", XS_TRACE_DIR, argv[0]) < 0)
		path = NULL;
	if (!path)
		return ENOMEM;
	if (trace_set_file(path, true) != 0) {
		err = errno;
		log_warn("cannot open the trace file %s: %s", path,
			 strerror(err));
	}
	free(path);
	return err ? err : op_ok(call);
}

/* Resident set size in kB, or 0 if /proc cannot tell. */
static unsigned long rss_kb(void)
{
	unsigned long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "re");

	if (f) {
		if (fscanf(f, "%lu %lu", &pages, &resident) != 2)
			resident = 0;
		fclose(f);
	}
	return resident * (unsigned long)(sysconf(_SC_PAGESIZE) / 1024);
}

struct node_sizes {
	unsigned long names, values;
};

static void count_node(const struct node *n, const char *path, void *arg)
{
	struct node_sizes *sz = arg;

	(void)path;
	sz->names += node_name_len(n) + 1;
	sz->values += node_value_len(n);
}

static void memory_report(struct server *srv, struct reply *r)
{
	struct node_sizes sizes = { 0, 0 };
	unsigned long txns = 0, live = 0;
	unsigned long socket_conns = 0;
	unsigned long queued_in = 0, queued_out = 0;
	struct conn *c;

	store_each(&srv->store, count_node, &sizes);
	LIST_FOREACH(c, &srv->conns, link) {
		struct client *cl = c->owner_data;

		if (c->closing)
			continue;	/* its queues may be gone already */
		live++;
		txns += cl->txns.count;
		queued_in += evbuffer_get_length(c->in);
		queued_out += evbuffer_get_length(c->out);
		if (strcmp(c->tp->kind, "socket") == 0)
			socket_conns++;
	}
	reply_printf(r, "nodes: %lu (names %lu bytes, values %lu bytes)\n",
		     store_count(&srv->store), sizes.names, sizes.values);
	reply_printf(r, "connections: %lu (%lu sockets, %lu rings)\n",
		     live, socket_conns, live - socket_conns);
	reply_printf(r, "domains: %u\n", domains_count(srv->domains));
	reply_printf(r, "watches: %lu\n", srv->watches.count);
	reply_printf(r, "transactions: %lu\n", txns);
	reply_printf(r, "queued: %lu bytes in, %lu bytes out\n", queued_in,
		     queued_out);
	reply_printf(r, "resident: %lu kB\n", rss_kb());
}

/* memreport [<file>]: the report as the reply, or written to file. */
static int control_memreport(struct op_call *call, const char **argv,
			     unsigned int argc)
{
	struct reply report;
	FILE *f;

	if (argc > 1)
		return EINVAL;
	if (argc == 0) {
		memory_report(call->srv, call->reply);
		reply_append(call->reply, "", 1);
		return 0;
	}
	if (argv[0][0] != '/')
		return EINVAL;
	reply_reset(&report);
	memory_report(call->srv, &report);
	f = fopen(argv[0], "we");
	if (!f)
		return errno;
	if (fwrite(report.buf, 1, report.len, f) != report.len) {
		int err = errno ? errno : EIO;

		fclose(f);
		return err;
	}
	if (fclose(f) != 0)
		return errno;
	return op_ok(call);
}

/* What domid holds now, summed over its connections. */
static void domain_usage(struct op_call *call, unsigned int domid)
{
	unsigned long watches = 0, txns = 0, memory = 0;
	struct server *srv = call->srv;
	struct conn *c;

	LIST_FOREACH(c, &srv->conns, link) {
		struct client *cl = c->owner_data;

		if (c->who.domid != domid || c->closing)
			continue;
		watches += cl->watcher.count;
		txns += cl->txns.count;
		memory += ops_conn_memory(c);
	}
	memory += srv->store.use[domid].bytes;
	reply_printf(call->reply, "Domain %u:\n", domid);
	reply_printf(call->reply, "%-16s: %8u\n", "nodes",
		     srv->store.use[domid].owned);
	reply_printf(call->reply, "%-16s: %8lu\n", "watches", watches);
	reply_printf(call->reply, "%-16s: %8lu\n", "transactions", txns);
	reply_printf(call->reply, "%-16s: %8lu\n", "memory", memory);
}

/*
 * quota max [-r]: for each count, the most any one domain holds now.
 * Upstream 4.19 keeps a high-water mark (and -r resets it); this daemon
 * keeps none, so it shows the present maxima and -r has nothing to reset.
 * (4.17 itself read "max" as domid 0.)  One pass over the connections.
 */
static int control_quota_max(struct op_call *call, const char **argv,
			     unsigned int argc)
{
	struct server *srv = call->srv;
	unsigned long *watches, *txns, *memory;
	unsigned long max_nodes = 0, max_watches = 0, max_txns = 0;
	unsigned long max_memory = 0;
	struct conn *c;

	if (argc > 1 || (argc == 1 && strcmp(argv[0], "-r") != 0))
		return EINVAL;
	watches = calloc(3 * (size_t)STORE_DOMIDS, sizeof(*watches));
	if (!watches)
		return ENOMEM;
	txns = watches + STORE_DOMIDS;
	memory = txns + STORE_DOMIDS;
	LIST_FOREACH(c, &srv->conns, link) {
		struct client *cl = c->owner_data;

		if (c->closing || c->who.domid >= STORE_DOMIDS)
			continue;
		watches[c->who.domid] += cl->watcher.count;
		txns[c->who.domid] += cl->txns.count;
		memory[c->who.domid] += ops_conn_memory(c);
	}
	for (size_t d = 0; d < STORE_DOMIDS; d++) {
		const struct store_domid_use *u = &srv->store.use[d];

		if (u->owned > max_nodes)
			max_nodes = u->owned;
		if (watches[d] > max_watches)
			max_watches = watches[d];
		if (txns[d] > max_txns)
			max_txns = txns[d];
		if (memory[d] + u->bytes > max_memory)
			max_memory = memory[d] + u->bytes;
	}
	free(watches);
	reply_printf(call->reply, "Max. values held by a domain now:\n");
	reply_printf(call->reply, "%-17s: %8lu\n", "nodes", max_nodes);
	reply_printf(call->reply, "%-17s: %8lu\n", "watches", max_watches);
	reply_printf(call->reply, "%-17s: %8lu\n", "transactions", max_txns);
	reply_printf(call->reply, "%-17s: %8lu\n", "memory", max_memory);
	reply_append(call->reply, "", 1);
	return 0;
}

/*
 * quota: the global limits; quota set <name> <value>: change one;
 * quota <domid>: what that domain holds; quota max [-r]: see above.
 */
static int control_quota(struct op_call *call, const char **argv,
			 unsigned int argc)
{
	struct quotas *q = &call->srv->quotas;
	enum quota_kind kind;
	unsigned int domid, value;

	if (argc >= 1 && strcmp(argv[0], "max") == 0)
		return control_quota_max(call, argv + 1, argc - 1);
	if (argc == 3 && strcmp(argv[0], "set") == 0) {
		if (!quota_parse_name(argv[1], &kind) ||
		    !op_parse_quota_value(argv[2], &value))
			return EINVAL;
		q->hard[kind] = value;
		server_quotas_changed(call->srv);
		return op_ok(call);
	}
	if (argc == 1) {
		if (!op_parse_domid(argv[0], &domid))
			return EINVAL;
		if (!ops_quota_domain(call->srv, domid))
			return ENOENT;
		domain_usage(call, domid);
	} else if (argc == 0) {
		reply_printf(call->reply, "Quota settings:\n");
		for (int k = 0; k < QUOTA_KINDS; k++)
			reply_printf(call->reply, "%-17s: %8u %s\n",
				     quota_name((enum quota_kind)k), q->hard[k],
				     quota_description((enum quota_kind)k));
	} else {
		return EINVAL;
	}
	reply_append(call->reply, "", 1);
	return 0;
}

/* quota-soft: the soft memory limit; quota-soft set memory <value>. */
static int control_quota_soft(struct op_call *call, const char **argv,
			      unsigned int argc)
{
	struct quotas *q = &call->srv->quotas;
	unsigned int value;

	if (argc == 3 && strcmp(argv[0], "set") == 0 &&
	    strcmp(argv[1], "memory") == 0 &&
	    op_parse_quota_value(argv[2], &value)) {
		q->soft_memory = value;
		server_quotas_changed(call->srv);
		return op_ok(call);
	}
	if (argc)
		return EINVAL;
	reply_printf(call->reply, "Quota settings:\n%-17s: %8u %s\n",
		     "memory", q->soft_memory,
		     "Total Xenstore memory per domain (warning level)");
	reply_append(call->reply, "", 1);
	return 0;
}

static int control_help(struct op_call *call, const char **argv,
			unsigned int argc);

/* The answers of live-update are text: "OK", "BUSY" or a reason. */
static int lu_reply(struct op_call *call, const char *text)
{
	reply_append_str(call->reply, text);
	return 0;
}

static int replace_string(char **slot, const char *value)
{
	char *copy = strdup(value);

	if (!copy)
		return ENOMEM;
	free(*slot);
	*slot = copy;
	return 0;
}

/*
 * live-update -f <binary> | -c <cmdline> | -s [-t <sec>] [-F] | -a, as
 * xenstore-control sends them (docs/misc/xenstore.txt).  -s answers BUSY
 * while transactions are open, until -t seconds after the first try; then
 * -F goes ahead anyway (the transactions commit with EAGAIN afterwards,
 * so their clients redo them) and without it the update is refused.
 */
static int control_live_update(struct op_call *call, const char **argv,
			       unsigned int argc)
{
	struct server *srv = call->srv;
	unsigned long timeout = 60;
	bool force = false;
	const char *why;
	char msg[160];
	struct timespec now;

	if (argc == 2 && strcmp(argv[0], "-f") == 0) {
		if (access(argv[1], X_OK) != 0) {
			snprintf(msg, sizeof(msg), "cannot execute %s: %s",
				 argv[1], strerror(errno));
			return lu_reply(call, msg);
		}
		return replace_string(&srv->live_update.binary, argv[1])
		       ?: lu_reply(call, "OK");
	}
	if (argc == 2 && strcmp(argv[0], "-c") == 0)
		return replace_string(&srv->live_update.cmdline, argv[1])
		       ?: lu_reply(call, "OK");
	if (argc == 1 && strcmp(argv[0], "-a") == 0) {
		free(srv->live_update.binary);
		free(srv->live_update.cmdline);
		srv->live_update.binary = srv->live_update.cmdline = NULL;
		srv->live_update.trying = false;
		return lu_reply(call, "OK");
	}
	if (argc < 1 || strcmp(argv[0], "-s") != 0)
		return EINVAL;
	for (unsigned int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-F") == 0)
			force = true;
		else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc &&
			 wire_parse_uint(argv[i + 1], 86400, &timeout))
			i++;
		else
			return EINVAL;
	}
	if (!srv->live_update.binary)
		return lu_reply(call, "no binary given: send -f <binary> first");
	if (!srv->live_update.exec)
		return lu_reply(call, "live update is not available here");
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!srv->live_update.trying) {
		srv->live_update.trying = true;
		srv->live_update.first_try = now;
	}
	if (srv->open_txns) {
		/* xenstore-control's last try comes timeout - 1 seconds after
		 * its first (it sleeps a second between tries): the timeout is
		 * over by then.  The monotonic clock, to the nanosecond: whole
		 * wall-clock seconds made two tries a moment apart look a
		 * second apart. */
		double waited = (double)(now.tv_sec -
					 srv->live_update.first_try.tv_sec) +
				(double)(now.tv_nsec -
					 srv->live_update.first_try.tv_nsec) / 1e9;

		if (waited + 1 < (double)timeout)
			return lu_reply(call, "BUSY");
		if (!force) {
			srv->live_update.trying = false;
			snprintf(msg, sizeof(msg), "timeout: %lu transactions "
				 "still open (-F forces the update)",
				 srv->open_txns);
			return lu_reply(call, msg);
		}
	}
	srv->live_update.trying = false;
	server_commit(srv);
	/* Returns only if the new program could not be started. */
	why = srv->live_update.exec(srv, call->c, call->req,
				    srv->live_update.binary,
				    srv->live_update.cmdline);
	snprintf(msg, sizeof(msg), "live update failed: %s", why);
	return lu_reply(call, msg);
}

static const struct control_cmd control_cmds[] = {
	{ "check", "", control_check },
	{ "help", "", control_help },
	{ "live-update", "-f <file>|-c <cmdline>|-s [-t <sec>] [-F]|-a",
	  control_live_update },
	{ "log", "[on|off|+io|-io|+conn|-conn]...", control_log },
	{ "logfile", "<file>", control_logfile },
	{ "memreport", "[<file>]", control_memreport },
	{ "print", "<string>", control_print },
	{ "quota", "[set <name> <val>|<domid>|max [-r]]", control_quota },
	{ "quota-soft", "[set memory <val>]", control_quota_soft },
};

#define N_CONTROL_CMDS (sizeof(control_cmds) / sizeof(control_cmds[0]))

static int control_help(struct op_call *call, const char **argv,
			unsigned int argc)
{
	(void)argv;
	if (argc)
		return EINVAL;
	for (size_t i = 0; i < N_CONTROL_CMDS; i++)
		reply_printf(call->reply, "%s\t%s\n", control_cmds[i].name,
			     control_cmds[i].usage);
	reply_append(call->reply, "", 1);
	return 0;
}

int op_control(struct op_call *call)
{
	const char *argv[CONTROL_ARGS_MAX];
	unsigned int argc = wire_split(call->req, argv, CONTROL_ARGS_MAX);

	if (argc == 0 || argc == CONTROL_ARGS_MAX)
		return EINVAL;
	for (size_t i = 0; i < N_CONTROL_CMDS; i++)
		if (strcmp(argv[0], control_cmds[i].name) == 0)
			return control_cmds[i].fn(call, argv + 1, argc - 1);
	return EINVAL;
}
