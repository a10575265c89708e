/* SPDX-License-Identifier: MIT */
/* The audit log: DIR/audit.log, one JSON object per line, appended by
 * the server (writes, leases, pins, refused addresses) and by the
 * commands that change the directory (token add/revoke, lease break,
 * import, gc).  docs/server.md describes the fields.
 *
 * The file is opened O_APPEND (mode 0600) and each record is written
 * with one write(), so records from several threads and processes never
 * interleave.  struct audit is immutable once open: any thread may call
 * audit_log().  Never given a token, only token ids.
 */
#ifndef VMFERRY_AUDIT_H
#define VMFERRY_AUDIT_H

#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#define AUDIT_FILE "audit.log"

struct audit;

/* One record.  Strings are borrowed; NULL (or 0) leaves a field out. */
struct audit_entry {
	const char *action; /* "commit", "lease.grant", "token.add", ... */
	const char *token;  /* token id (never the token) */
	const char *addr;   /* client address (HTTP) */
	const char *image;
	uint64_t version; /* 0: none */
	unsigned status;  /* HTTP status (HTTP), 0 for a command */
	json_t *extra;	  /* more fields, stolen; may be NULL */
};

/* Open (create, mode 0600) DIR/audit.log for appending.  -errno. */
int audit_open(const char *dir, struct audit **ret);
void audit_close(struct audit *a);
/* Give the file to uid:gid (the server's --user). */
int audit_chown(struct audit *a, uid_t uid, gid_t gid);

/* Append one record; a failure is logged (once per burst) and
 * returned, never fatal.  a may be NULL (no log: nothing happens, the
 * extra is freed).  Blocks on one write(). */
int audit_log(struct audit *a, const struct audit_entry *e);

/* For the commands: open DIR's log, append one record, close.  A
 * failure is logged as a warning; the command's work is done. */
void audit_cli(const char *dir, const struct audit_entry *e);

#endif
