/* RESET_WATCHES and CONTROL. */
#include <errno.h>
#include <string.h>

#include "daemon/log.h"
#include "ops/ops_impl.h"

int op_reset_watches(struct op_call *call)
{
	struct client *cl = call->c->owner_data;

	/* Drops the caller's transactions, the one of this request too. */
	txn_set_clear(&cl->txns);
	watcher_clear(&call->srv->watches, &cl->watcher);
	return op_ok(call);
}

/* CONTROL commands: name, arguments shown by help, handler. */
struct control_cmd {
	const char *name;
	const char *usage;
	int (*fn)(struct op_call *call, const char **argv, unsigned int argc);
};

static int control_help(struct op_call *call, const char **argv,
			unsigned int argc);

static int control_check(struct op_call *call, const char **argv,
			 unsigned int argc)
{
	(void)argv;
	if (argc)
		return EINVAL;
	ops_check_store(call->srv);
	return op_ok(call);
}

static int control_print(struct op_call *call, const char **argv,
			 unsigned int argc)
{
	if (argc != 1)
		return EINVAL;
	log_write(LOG_LVL_INFO, "control: %s", argv[0]);
	return op_ok(call);
}

static const struct control_cmd control_cmds[] = {
	{ "check", "", control_check },
	{ "print", "<string>", control_print },
	{ "help", "", control_help },
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
	const char *argv[8];
	unsigned int argc = wire_split(call->req, argv, 8);

	if (argc == 0)
		return EINVAL;
	for (size_t i = 0; i < N_CONTROL_CMDS; i++)
		if (strcmp(argv[0], control_cmds[i].name) == 0)
			return control_cmds[i].fn(call, argv + 1, argc - 1);
	return EINVAL;
}

static void report_problem(const char *what, const char *path, void *arg)
{
	(void)arg;
	log_error("store check: %s: %s", path, what);
}

unsigned int ops_check_store(struct server *srv)
{
	unsigned int problems = store_check(&srv->store, report_problem, NULL);

	if (problems)
		log_error("store check found %u problems", problems);
	else
		log_info("store check: %lu nodes, no problems",
			 srv->store.count);
	return problems;
}
