/* SPDX-License-Identifier: MIT */
/* Local copy paths, the in-use lock, and how the user unlocks a copy
 * (key file or passphrase), in the user's terms.  See local.h.
 * Stateless.  Every buffer that held key material is cleansed. */
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

int local_key_opts_check(const struct local_key_opts *o, const char *prefix)
{
	int n = !!o->key_file + !!o->passphrase_file + o->passphrase;

	if (n <= 1)
		return 0;
	log_error("--%skey-file, --%spassphrase and --%spassphrase-file "
		  "exclude each other",
		  prefix, prefix, prefix);
	return -EINVAL;
}

/* Say which kind of key dir needs: -EKEYREJECTED. */
static int local_wrong_kind(const char *dir, enum keys_kind need)
{
	if (need == KEYS_KIND_PASSPHRASE)
		log_error("the local copy in %s is protected by a passphrase: "
			  "use --passphrase or --passphrase-file FILE",
			  dir);
	else
		log_error("the local copy in %s is protected by a key file, "
			  "not a passphrase: use --key-file FILE",
			  dir);
	return -EKEYREJECTED;
}

static int local_passphrase_file(const char *path, struct keys_user *u)
{
	int r =
	    passphrase_read_file(path, u->pass, sizeof(u->pass), &u->pass_len);

	if (r == -EPERM)
		return log_error_errno(r,
				       "passphrase file %s is readable by "
				       "others: chmod 600 it",
				       path);
	if (r == -ENODATA)
		return log_error_errno(r,
				       "passphrase file %s: the first line "
				       "is empty",
				       path);
	if (r == -E2BIG)
		return log_error_errno(r,
				       "passphrase file %s: longer than %d "
				       "bytes",
				       path, PASSPHRASE_MAX);
	if (r < 0)
		return log_error_errno(r, "passphrase file %s: %m", path);
	return 0;
}

static int local_passphrase_ask(const char *dir, bool fresh,
				struct keys_user *u)
{
	_cleanup_free_ char *prompt = NULL;
	int r;

	if (asprintf(&prompt, "%sassphrase for the local copy in %s: ",
		     fresh ? "New p" : "P", dir) < 0)
		return log_oom();
	r = passphrase_ask(prompt, fresh ? "Repeat the new passphrase: " : NULL,
			   u->pass, sizeof(u->pass), &u->pass_len);
	if (r == -ENXIO)
		return log_error_errno(r, "no terminal to ask for the "
					  "passphrase on: use "
					  "--passphrase-file FILE");
	if (r == -ENODATA)
		return log_error_errno(r, "empty passphrase: refused");
	if (r == -E2BIG)
		return log_error_errno(r, "passphrase longer than %d bytes",
				       PASSPHRASE_MAX);
	if (r == -EKEYREJECTED)
		return log_error_errno(r, "the two passphrases differ: "
					  "nothing changed");
	if (r == -EINTR)
		return log_error_errno(r, "interrupted: nothing changed");
	if (r < 0)
		return log_error_errno(r, "asking for the passphrase: %m");
	return 0;
}

/* Fill u as o says; fresh: for a new wrap (create a missing key file,
 * ask twice). */
static int local_load(const struct local_key_opts *o, const char *dir,
		      bool fresh, bool ask_by_default, struct keys_user *u)
{
	bool pass = o->passphrase || o->passphrase_file ||
		    (ask_by_default && !o->key_file);
	int r;

	keys_user_fini(u);
	if (pass) {
		u->kind = KEYS_KIND_PASSPHRASE;
		r = o->passphrase_file
			? local_passphrase_file(o->passphrase_file, u)
			: local_passphrase_ask(dir, fresh, u);
	} else {
		u->kind = KEYS_KIND_FILE;
		r = local_user_key(o->key_file, fresh, u->key);
	}
	if (r < 0)
		keys_user_fini(u);
	return r;
}

int local_user_secret(const struct local_key_opts *o, const char *dir,
		      bool create, struct keys_user *ret)
{
	enum keys_kind kind, want;
	bool fresh = false;
	int r;

	want = o->passphrase || o->passphrase_file ? KEYS_KIND_PASSPHRASE
						   : KEYS_KIND_FILE;
	r = keys_data_kind(dir, &kind);
	if (r == -ENOENT)
		fresh = create;
	else if (r == 0 && kind != want)
		return local_wrong_kind(dir, kind);
	/* Other errors are opening's to report, with the key in hand. */
	return local_load(o, dir, fresh, false, ret);
}

int local_new_secret(const struct local_key_opts *o, const char *dir,
		     struct keys_user *ret)
{
	return local_load(o, dir, true, true, ret);
}

int local_keys_error(int r, const char *dir, const struct keys_user *user)
{
	bool pass = user->kind == KEYS_KIND_PASSPHRASE;

	if (r == -EBADMSG && pass)
		log_error("wrong passphrase for the local copy in %s", dir);
	else if (r == -EBADMSG)
		log_error("wrong key for the local copy in %s (the key file "
			  "does not open it: wrong --key-file?)",
			  dir);
	else if (r == -EKEYREJECTED)
		local_wrong_kind(dir,
				 pass ? KEYS_KIND_FILE : KEYS_KIND_PASSPHRASE);
	else if (r == -EPROTO)
		log_error("%s/data.key is damaged or from a newer vmferry: the "
			  "local copy cannot be opened",
			  dir);
	else if (r == -ENOENT)
		log_error("%s holds no key (data.key): not a local copy", dir);
	else
		log_error_errno(r, "the keys of the local copy in %s: %m", dir);
	return r;
}

int local_open_keys(const char *dir, const struct keys_user *user,
		    uint8_t ret_cache_id[CRYPTO_CACHE_ID_LEN],
		    uint8_t ret_data_key[CRYPTO_KEY_LEN])
{
	int r = keys_data_open(dir, user, ret_cache_id, ret_data_key);

	return r < 0 ? local_keys_error(r, dir, user) : 0;
}

int local_load_token(const char *file, char **ret)
{
	int r = remote_read_token(file, ret);

	if (r == -ENOKEY)
		log_error("no token: use --token-file FILE or set "
			  "VMFERRY_TOKEN");
	else if (r == -EINVAL)
		log_error("the token is empty, too long or holds white space");
	else if (r < 0)
		log_error_errno(r, "token file %s: %m", file);
	return r;
}
