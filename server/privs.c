/* SPDX-License-Identifier: MIT */
/* Secret file checks and dropping root (privs.h).  Stateless. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "io.h"
#include "log.h"
#include "util.h"

#include "cli.h"
#include "privs.h"

int privs_read_secret(const char *path, size_t max, char **ret_buf)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	int r;

	if (fd < 0)
		return log_error_errno(-errno, "reading %s: %m", path);
	if (fstat(fd, &st) < 0)
		return log_error_errno(-errno, "reading %s: %m", path);
	if (st.st_mode & 077)
		return log_error_errno(-EPERM,
				       "%s may be read by group or others "
				       "(mode %04o): it is a secret; run "
				       "'chmod 600 %s'",
				       path, (unsigned)(st.st_mode & 07777),
				       path);
	if (!ret_buf)
		return 0;
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max)
		return log_error_errno(-EFBIG, "reading %s: %m", path);
	r = read_fd(fd, max, ret_buf, NULL);
	if (r < 0)
		return log_error_errno(r, "reading %s: %m", path);
	return 0;
}

int privs_lookup(const char *name, struct privs_user *ret)
{
	struct passwd *pw = getpwnam(name);
	uint64_t n;

	if (!pw && parse_u64(name, &n) == 0 && n < (uid_t)-1)
		pw = getpwuid((uid_t)n);
	if (!pw || strlen(pw->pw_name) >= sizeof(ret->name))
		return -ENOENT;
	snprintf(ret->name, sizeof(ret->name), "%s", pw->pw_name);
	ret->uid = pw->pw_uid;
	ret->gid = pw->pw_gid;
	return 0;
}

int privs_drop(const struct privs_user *u)
{
	if (getuid() == u->uid && geteuid() == u->uid)
		return 0; /* already that user: nothing to drop */
	if (geteuid() != 0)
		return log_error_errno(
		    -EPERM,
		    "--user %s: only root can become another "
		    "user (running as uid %u)",
		    u->name, (unsigned)geteuid());
	if (initgroups(u->name, u->gid) < 0 || setgid(u->gid) < 0 ||
	    setuid(u->uid) < 0)
		return log_error_errno(-errno,
				       "--user %s: cannot drop root: %m; "
				       "refusing to serve as root",
				       u->name);
	/* setuid() from root changes all three uids; check it did. */
	if (u->uid != 0 && (setuid(0) == 0 || geteuid() == 0 || getuid() == 0))
		return log_error_errno(-EPERM,
				       "--user %s: root could be regained; "
				       "refusing to serve",
				       u->name);
	log_info("running as user %s (uid %u, gid %u)", u->name,
		 (unsigned)u->uid, (unsigned)u->gid);
	return 0;
}

int privs_check_dir(const char *dir, const struct privs_user *u)
{
	static const char *const subdirs[] = {"", "blocks", "images", "commits",
					      "tmp"};
	static const char *const files[] = {CLI_TOKENS};
	char path[4096];

	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		snprintf(path, sizeof(path), "%s%s%s", dir,
			 *subdirs[i] ? "/" : "", subdirs[i]);
		if (access(path, R_OK | W_OK | X_OK) == 0 || errno == ENOENT)
			continue;
		goto refused;
	}
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		if (access(path, R_OK) == 0)
			continue;
		goto refused;
	}
	return 0;
refused:
	return log_error_errno(-EACCES,
			       "%s is not readable and writable by user %s "
			       "(uid %u): the data directory must belong to "
			       "the --user; run 'chown -R %s: %s'",
			       path, u->name, (unsigned)u->uid, u->name, dir);
}
