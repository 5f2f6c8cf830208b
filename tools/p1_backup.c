/* p1_backup.c: `p1 backup`: a consistent copy of the history database while p1d keeps writing. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../src/store.h"
#include "p1.h"

#define BACKUP_PAGES_PER_STEP 256 /* 1 MiB at 4 KiB pages: the writer waits at most one slice */
#define BACKUP_PAUSE_MS 5         /* between slices, so p1d's commits get the lock */
#define BACKUP_BUSY_TRIES 2000    /* about 10 s of a locked database before giving up */

static const char backup_usage[] =
    "Usage: p1 backup [--db PATH] [--force] [-q] DEST\n"
    "Copy the history database to DEST with SQLite's online backup, in small slices, while p1d\n"
    "keeps running and writing. The copy is written to DEST.tmp, checked and then renamed, so\n"
    "DEST is either the old file or a complete new one.\n"
    "\n"
    "Options:\n"
    "  --db PATH    database (default p1d.db)\n"
    "  --force      replace DEST when it exists\n"
    "  -q, --quiet  no summary line on success (for cron)\n"
    "  -h, --help   show this help\n"
    "--db takes its value as the next argument or after '=' (--db=PATH), once; -- ends the\n"
    "options.\n"
    "\n"
    "Exit status: 0 copied, 1 failed (also: DEST exists without --force), 2 usage error.\n";

static void pause_ms(int ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* Removes the copy tmp and what SQLite may have left beside it: a rollback journal, or the
 * WAL and its index (the copy takes the source's WAL mode), when writing it failed. */
static void remove_tmp(const char *tmp)
{
    static const char *const ext[] = {"", "-journal", "-wal", "-shm"};
    char path[4096 + 16];

    for (size_t k = 0; k < sizeof ext / sizeof ext[0]; k++)
        if (snprintf(path, sizeof path, "%s%s", tmp, ext[k]) < (int)sizeof path)
            unlink(path);
}

int p1_backup_main(int argc, char **argv)
{
    const char *db = "p1d.db", *dest = NULL;
    int force = 0, quiet = 0, only_files = 0, r;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_files || a[0] != '-') {
            if (dest) {
                fprintf(stderr, "p1 backup: unexpected argument '%s' (try 'p1 backup --help')\n",
                        a);
                return 2;
            }
            dest = a;
        } else if (!strcmp(a, "--")) {
            only_files = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(backup_usage, stdout);
            return 0;
        } else if (!strcmp(a, "--force")) {
            force = 1;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
        } else if ((r = p1_opt_value(argv, argc, &i, "--db", &db)) == P1_OPT_TWICE) {
            return p1_opt_twice("p1 backup", a);
        } else if (r < 0) {
            fprintf(stderr, "p1 backup: --db needs a value (try 'p1 backup --help')\n");
            return 2;
        } else if (r == 0) {
            static const char *const opts[] = {"--help", "--force", "--quiet", "--db"};
            return p1_unknown_option("p1 backup", a, opts, sizeof opts / sizeof opts[0]);
        }
    }
    /* "" ("$UNSET") would make the copy ".tmp" in the working directory, and remove one there */
    if (!dest || !*dest) {
        fprintf(stderr, "p1 backup: no DEST given (try 'p1 backup --help')\n");
        return 2;
    }
    struct stat sb, sdb;
    if (stat(dest, &sb) == 0 && stat(db, &sdb) == 0 && sb.st_dev == sdb.st_dev &&
        sb.st_ino == sdb.st_ino) {
        /* Renaming a copy over the live file would leave p1d writing to an unlinked inode. */
        fprintf(stderr, "p1 backup: %s is the database itself; choose another DEST\n", dest);
        return 2;
    }
    if (stat(dest, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "p1 backup: %s is a directory; give the backup's file name\n", dest);
        return 2;
    }
    if (!force && stat(dest, &sb) == 0) {
        fprintf(stderr, "p1 backup: %s exists; use --force to replace it\n", dest);
        return 1;
    }
    char err[STORE_ERR_MAX], tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", dest) >= (int)sizeof tmp) {
        fprintf(stderr, "p1 backup: destination path too long\n");
        return 2;
    }
    store_options o;
    store_options_default(&o);
    o.readonly = 1;
    store *s = store_open(db, &o, err, sizeof err); /* checks it is a p1d database we can read */
    if (!s) {
        fprintf(stderr, "p1 backup: %s\n", err);
        return 1;
    }
    remove_tmp(tmp); /* a journal or WAL of an earlier copy would be applied to this one */
    /* Create it ourselves first: SQLite's "unable to open database file" hides the reason. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640); /* as the store's own */
    if (fd < 0) {
        fprintf(stderr, "p1 backup: cannot create %s: %s\n", tmp, strerror(errno));
        store_close(s);
        return 1;
    }
    close(fd);
    sqlite3 *out = NULL;
    int rc = sqlite3_open_v2(tmp, &out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    sqlite3_backup *b = rc == SQLITE_OK ? sqlite3_backup_init(out, "main", store_db(s), "main")
                                        : NULL;
    if (!b) {
        fprintf(stderr, "p1 backup: %s: %s\n", tmp, out ? sqlite3_errmsg(out) : "cannot open");
        sqlite3_close(out);
        store_close(s);
        remove_tmp(tmp);
        return 1;
    }
    int busy = 0;
    do {
        rc = sqlite3_backup_step(b, BACKUP_PAGES_PER_STEP);
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
            if (++busy > BACKUP_BUSY_TRIES)
                break;
        }
        if (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
            pause_ms(BACKUP_PAUSE_MS);
    } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
    int pages = sqlite3_backup_pagecount(b);
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "p1 backup: copying %s failed: %s\n", db, sqlite3_errstr(rc));
        sqlite3_close(out);
        store_close(s);
        remove_tmp(tmp);
        return 1;
    }
    store_close(s);
    /* the copy must be whole before it replaces anything; a page-for-page copy that is not
     * was copied from a damaged database, and that is what the user must hear */
    sqlite3_stmt *st = NULL;
    char why[200] = "";
    int ok = 0, damaged = 0;
    if (sqlite3_prepare_v2(out, "PRAGMA quick_check", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        const char *qc = (const char *)sqlite3_column_text(st, 0);
        ok = qc && !strcmp(qc, "ok");
        damaged = !ok;
        if (damaged) {
            /* its first finding, on one line ("*** in database main ***\nPage 150: ...") */
            const char *f = qc ? qc : "?";
            if (!strncmp(f, "*** ", 4) && strchr(f, '\n'))
                f = strchr(f, '\n') + 1;
            snprintf(why, sizeof why, "%.*s", (int)strcspn(f, "\n"), f);
        }
    } else {
        snprintf(why, sizeof why, "%s", sqlite3_errmsg(out));
    }
    sqlite3_finalize(st);
    if (ok && sqlite3_exec(out, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(why, sizeof why, "%s", sqlite3_errmsg(out));
        ok = 0;
    }
    if (sqlite3_close(out) != SQLITE_OK && ok) {
        snprintf(why, sizeof why, "closing it failed");
        ok = 0;
    }
    if (damaged)
        fprintf(stderr, "p1 backup: the copy of %s fails SQLite's quick_check (%s): %s itself "
                        "is damaged; %s is left as it was\n", db, why, db, dest);
    else if (!ok)
        fprintf(stderr, "p1 backup: %s: %s; %s is left as it was\n", tmp, why, dest);
    if (!ok) {
        remove_tmp(tmp);
        return 1;
    }
    if (rename(tmp, dest) < 0) {
        fprintf(stderr, "p1 backup: %s: %s\n", dest, strerror(errno));
        remove_tmp(tmp);
        return 1;
    }
    if (!quiet)
        fprintf(stderr, "p1 backup: %s -> %s (%d pages)\n", db, dest, pages);
    return 0;
}
