/* SPDX-License-Identifier: MIT */
/* Local copy paths and the in-use lock.  See local.h.  Stateless. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"

#include "keys.h"
#include "local.h"

int local_xdg_path(const char *env, const char *fallback, const char *suffix,
		   char *buf, size_t len)
{
	const char *base = getenv(env), *home = getenv("HOME");
	int n;

	if (base && *base)
		n = snprintf(buf, len, "%s/vmferry%s", base, suffix);
	else if (home && *home)
		n = snprintf(buf, len, "%s/%s/vmferry%s", home, fallback,
			     suffix);
	else
		return -ENOENT;
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int local_copy_dir(const char *cache_base, const struct remote_url *url,
		   char *buf, size_t len)
{
	char base[4096];
	int n, r;

	if (cache_base) {
		n = snprintf(base, sizeof(base), "%s", cache_base);
		if (n < 0 || (size_t)n >= sizeof(base))
			return -ENAMETOOLONG;
	} else {
		r = local_xdg_path("XDG_CACHE_HOME", ".cache", "", base,
				   sizeof(base));
		if (r < 0)
			return r;
	}
	n = snprintf(buf, len, "%s/%s/%s", base, url->host_port, url->name);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int local_lock(const char *dir, int *ret_fd)
{
	_cleanup_close_ int fd = -1;
	char path[4200];

	snprintf(path, sizeof(path), "%s/in-use", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? -EBUSY : -errno;
	*ret_fd = steal_fd(&fd);
	return 0;
}

int local_user_key(const char *key_file, bool create,
		   uint8_t ret_key[CRYPTO_KEY_LEN])
{
	char path[4096];
	const char *p = key_file;
	bool created = false;
	int r;

	if (!p) {
		r = local_xdg_path("XDG_CONFIG_HOME", ".config", "/user.key",
				   path, sizeof(path));
		if (r < 0)
			return log_error_errno(r, "no key file: use --key-file "
						  "FILE");
		p = path;
	}
	r = keys_user_load(p, create, ret_key, &created);
	if (r == -EPERM)
		return log_error_errno(r,
				       "key file %s is readable by others: "
				       "chmod 600 it",
				       p);
	if (r == -EBADMSG)
		return log_error_errno(r,
				       "key file %s is not a vmferry key "
				       "(64 hex digits)",
				       p);
	if (r < 0)
		return log_error_errno(r, "key file %s: %m", p);
	if (created)
		log_info("created a new key in %s (mode 0600): keep it, the "
			 "local copy cannot be read without it",
			 p);
	return 0;
}
