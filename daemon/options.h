/*
 * daemon/options: the command line, parsed once into struct options.
 */
#ifndef XS_DAEMON_OPTIONS_H
#define XS_DAEMON_OPTIONS_H

#include <stdbool.h>

#include "log/log.h"
#include "quota/quota.h"

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
	/* Upstream's options that change nothing here (options_log_notes
	 * says why), and -P, which does. */
	bool output_pid;			/* -P: pid on stdout once up */
	bool no_domain_init;			/* -D */
	bool no_recovery;			/* -R */
	const char *internal_db;		/* -I [on|off]: "on" when bare */
	bool keep_orphans;			/* -K */
	bool watch_event_timeout_set;		/* -w watch-event=N */
	unsigned int watch_event_timeout;
	bool event_port_set;			/* -e, --event */
	bool live_update_flag;			/* -U */
};

/*
 * Fill o from argv (after setting its defaults): 0, or -1 after a message
 * for a bad option (exit status 2).  --help and --version print and exit
 * with status 0 here.
 */
int parse_options(int argc, char **argv, struct options *o);

/*
 * Log one line for each upstream option given that changes nothing here,
 * saying why (after logging is set up).
 */
void options_log_notes(const struct options *o);

/* $XENSTORED_PATH, else $XENSTORED_RUNDIR/socket, else the built-in one
 * (malloc'd; NULL on ENOMEM). */
char *default_socket_path(void);

/* path made absolute against the current directory (malloc'd; NULL on
 * ENOMEM): a daemon that detaches changes directory. */
char *absolute_path(const char *path);

#endif
