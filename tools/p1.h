/* p1.h (tools): entry points of the `p1` command's subcommands, dispatched from tools/p1.c. */
#ifndef P1_TOOL_P1_H
#define P1_TOOL_P1_H

#include <stddef.h>

/* Each takes the arguments after the subcommand name (argv[0] is the subcommand itself) and
 * returns the process exit status: 0 success, 1 failure, 2 usage error. */
int p1_decode_main(int argc, char **argv); /* tools/p1.c: `p1 decode` */
int p1_bench_main(int argc, char **argv);  /* tools/p1_bench.c: `p1 bench` */
int p1_sim_main(int argc, char **argv);    /* tools/p1_sim.c: `p1 sim` (simulator engineer) */
int p1_import_main(int argc, char **argv); /* tools/p1_import.c: `p1 import` (store) */
int p1_export_main(int argc, char **argv); /* tools/p1_export.c: `p1 export` (store) */
int p1_backup_main(int argc, char **argv); /* tools/p1_backup.c: `p1 backup` (store) */
int p1_prices_main(int argc, char **argv); /* tools/p1_prices.c: `p1 prices` (costs) */

/* tools/p1.c: matches "--name VALUE" and "--name=VALUE" at argv[*i]; sets *val and advances *i
 * past what it used. Returns 1 on a match, 0 when argv[*i] is another option, -1 when the value
 * is missing (also when the next argument is an option: "--db -q") or empty ("--db="),
 * P1_OPT_TWICE when the option came before (argv[1..*i)): one value each, as the HTTP API
 * refuses a parameter given twice. */
int p1_opt_value(char **argv, int argc, int *i, const char *name, const char **val);
#define P1_OPT_TWICE (-2)

/* tools/p1.c: reports that option arg ("--from" or "--from=X") of cmd ("p1 export") was given
 * twice, as "CMD: --from given twice (try 'CMD --help')" on stderr. Returns 2. */
int p1_opt_twice(const char *cmd, const char *arg);

/* tools/p1.c: reports the unknown option arg of cmd ("p1 backup") on stderr, as "CMD: unknown
 * option 'ARG' (did you mean 'OPT'?)" when arg is a likely typo of one of opts[n], else with
 * "(try 'CMD --help')". Returns 2, the status of a usage error. */
int p1_unknown_option(const char *cmd, const char *arg, const char *const *opts, size_t n);

/* tools/p1.c: for an import into the database named db by --db: returns 0 when db is a file, else
 * (":memory:", a "file:" URI with ":memory:", mode=memory or no path: a database SQLite deletes
 * when the command ends) reports on stderr that CMD's import would be lost and returns 2. */
int p1_db_kept(const char *cmd, const char *db);

/* tools/p1.c: sets the calendar (civil_set_zone()) as p1d does: the zone the database db was
 * created in (store_zone()), else the system's (CET/CEST, or EET/EEST where the system runs on
 * it). db may be NULL. Before any time of the command line is read. */
void p1_calendar_zone(const char *db);

/* tools/p1.c: reports that writing standard output failed with errno err (0: unknown), as
 * "CMD: writing standard output: REASON", and returns the exit status: 1, or 0 without a word
 * for EPIPE (the reader went away, as `| head` does: that is how a stream ends). */
int p1_write_error(const char *cmd, int err);

/* tools/p1.c: sets up decryption in set from the values of --key, --ak (NULL when not given)
 * and --skip-tag, with the keys in crypt (which must outlive the parser). Returns NULL, or the
 * usage error as text. */
struct p1_crypt;
struct p1_settings;
const char *p1_crypt_options(const char *key, const char *ak, int skip_tag, struct p1_crypt *crypt,
                             struct p1_settings *set);

#endif
