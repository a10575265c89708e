/* SPDX-License-Identifier: MIT */
/* Local copy paths and the in-use lock.  See local.h.  Stateless. */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int local_cache_base(const char *cache_base, char *buf, size_t len)
{
	int n;

	if (!cache_base)
		return local_xdg_path("XDG_CACHE_HOME", ".cache", "", buf, len);
	n = snprintf(buf, len, "%s", cache_base);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int local_copy_dir(const char *cache_base, const struct remote_url *url,
		   char *buf, size_t len)
{
	char base[4096];
	int n, r;

	r = local_cache_base(cache_base, base, sizeof(base));
	if (r < 0)
		return r;
	n = snprintf(buf, len, "%s/%s/%s", base, url->host_port, url->name);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Does dir look like a copy (a key or a lifecycle record in it)? */
static bool is_copy(const char *dir)
{
	static const char *const files[] = {"data.key", "lifecycle.json"};
	char p[4400];

	for (size_t i = 0; i < 2; i++) {
		int n = snprintf(p, sizeof(p), "%s/%s", dir, files[i]);

		if (n > 0 && (size_t)n < sizeof(p) && access(p, F_OK) == 0)
			return true;
	}
	return false;
}

/* Sorted subdirectories of dir (a new array of new strings). */
static int subdirs(const char *dir, char ***ret, size_t *ret_n)
{
	struct dirent **list = NULL;
	char **out;
	size_t k = 0;
	int n;

	n = scandir(dir, &list, NULL, alphasort);
	if (n < 0)
		return -errno;
	out = calloc((size_t)n + 1, sizeof(*out));
	for (int i = 0; i < n; i++) {
		if (out && list[i]->d_type == DT_DIR &&
		    list[i]->d_name[0] != '.') {
			out[k] = strdup(list[i]->d_name);
			if (out[k])
				k++;
		}
		free(list[i]);
	}
	free(list);
	if (!out)
		return -ENOMEM;
	*ret = out;
	*ret_n = k;
	return 0;
}

static void free_names(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int local_each_copy(const char *base, int (*fn)(const char *dir, void *opaque),
		    void *opaque)
{
	char **hosts = NULL, **names = NULL, hdir[4096], dir[4200];
	size_t nh = 0, nn = 0;
	int r;

	r = subdirs(base, &hosts, &nh);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	for (size_t i = 0; i < nh && r >= 0; i++) {
		int n = snprintf(hdir, sizeof(hdir), "%s/%s", base, hosts[i]);

		if (n < 0 || (size_t)n >= sizeof(hdir) ||
		    subdirs(hdir, &names, &nn) < 0)
			continue;
		for (size_t j = 0; j < nn && r >= 0; j++) {
			n = snprintf(dir, sizeof(dir), "%s/%s", hdir, names[j]);
			if (n > 0 && (size_t)n < sizeof(dir) && is_copy(dir))
				r = fn(dir, opaque);
		}
		free_names(names, nn);
	}
	free_names(hosts, nh);
	return r < 0 ? r : 0;
}

bool local_in_use(const char *dir)
{
	int fd, r = local_lock(dir, &fd);

	if (r == 0)
		close(fd);
	return r == -EBUSY;
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
