/* SPDX-License-Identifier: MIT */
/* `vmferry mount URL MOUNTPOINT`: options, start-up, FUSE loop, shutdown.
 *
 * Start-up order (threads start last, after the fork to the background):
 * parse options, read the token and the user key, fork (unless -f), start
 * the fetch engine, read the image metadata and the manifest header,
 * open the cache (keys, LMDB), load the first manifest page, start the
 * control socket, mount, start hydration, tell the parent "mounted", run
 * the FUSE loop.  Shutdown stops threads in reverse order.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cleanup.h"
#include "hash.h"
#include "io.h"
#include "log.h"
#include "util.h"

#include "cache.h"
#include "crypto.h"
#include "ctl.h"
#include "fetch.h"
#include "fuse_ops.h"
#include "hydrate.h"
#include "image.h"
#include "keys.h"
#include "lease.h"
#include "pin.h"
#include "plain.h"
#include "fulldl.h"
#include "pending.h"
#include "profile.h"
#include "profile_upload.h"
#include "upload.h"
#include "expiry.h"
#include "mountwatch.h"
#include "lifecycle.h"
#include "local.h"
#include "main.h"
#include "remote.h"
#include "writeback.h"

struct mount_opts {
	const char *url;
	const char *mountpoint;
	const char *token_file;
	const char *cacert;
	const char *pin;
	const char *cache_dir;
	struct local_key_opts keys; /* --key-file, --passphrase[-file] */
	const char *log_file;
	bool foreground;
	bool insecure;
	bool no_hydrate;
	enum zpolicy_mode compress; /* --compress, default auto */
	bool no_profile;
	bool read_only;
	bool no_sync;
	bool ephemeral, keep;
	uint64_t check_interval_s;
	uint64_t max_cache;
	uint64_t sync_interval_s;
	uint64_t max_rate;
	uint64_t profile_s;
	uint64_t io_timeout_s;
	uint64_t connect_timeout_s;
	uint64_t readahead;
	/* A plain export (plain.h): read-only, no token, no lease.  url
	 * is then its display form (no query: it may hold a CDN's
	 * signature), plain_url what the user gave. */
	bool plain;
	const char *plain_url;
	bool has_manifest_pin;
	uint8_t manifest_pin[VMF_HASH_LEN]; /* --manifest-sha256 */
};

/* Everything a running mount holds, torn down in reverse. */
struct mount {
	struct mount_opts o;
	struct remote_url url;
	struct plain_source src; /* plain exports: where the files are */
	char *token;
	struct keys_user user; /* cleansed once the copy is open */
	/* The copy's data key and id, kept to seal its lifecycle record. */
	uint8_t data_key[CRYPTO_KEY_LEN];
	uint8_t cache_id[CRYPTO_CACHE_ID_LEN];
	struct lifecycle lc; /* as mounted */
	struct expiry *expiry;
	bool offline; /* mounted without the server */
	/* Set by the expiry thread (then SIGTERM ends the loop). */
	_Atomic int expired; /* enum lifecycle_state, 0: not expired */
	char cache_path[4096];
	char ctl_path[256];
	struct fetch *fetch;
	struct cache *cache;
	struct image *im;
	struct hydrate *hydrate;
	struct profile *prof; /* this session's first-read order */
	struct profile_upload *pu;
	struct writeback *wb;
	struct lease lease;	/* read-write mounts */
	struct pin_keeper *pin; /* read-only mounts */
	char holder[256];
	struct ctl *ctl;
	struct fuse *fuse;
	struct fuse_ops_ctx fctx;
	uint64_t version;
	uint64_t started_ns;
	/* Last status sample, for the current rate; control thread only. */
	uint64_t rate_bytes, rate_ns;
	int notify_fd;	       /* pipe to the waiting parent, or -1 */
	int lock_fd;	       /* the copy's in-use lock (local.h), or -1 */
	char mp_abs[PATH_MAX]; /* the mountpoint, canonical */
	pthread_t main_thread; /* runs the FUSE loop */
	struct mountwatch *watch;
	/* Set by the mount watch (then SIGTERM ends the loop): an unmount,
	 * though another mount namespace kept the connection open. */
	atomic_bool unmounted_elsewhere;
};

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: vmferry mount [OPTIONS] https://HOST:PORT/NAME MOUNTPOINT\n"
	    "       vmferry mount [OPTIONS] URL/NAME/vmferry.json MOUNTPOINT\n"
	    "\n"
	    "Mount a remote disk image as MOUNTPOINT/NAME.img.  Blocks are\n"
	    "fetched on demand, verified against the version's manifest and\n"
	    "cached encrypted; a background thread completes the local copy.\n"
	    "\n"
	    "https://HOST:PORT/NAME is an image on vmferry-server.  A URL whose\n"
	    "path ends in .json or / is a version exported with `vmferry\n"
	    "export` and served by any HTTPS or FTP server (https://, ftp://,\n"
	    "http://): mounted read-only, without a token; redirects are\n"
	    "followed once, at mount; a server that ignores Range gets a full\n"
	    "download into the cache first.  Without TLS (ftp://, http://)\n"
	    "give --manifest-sha256 (printed by export), or --insecure.\n"
	    "\n"
	    "  -f, --foreground        stay in the foreground (default: return\n"
	    "                          once mounted and serve in the background)\n"
	    "      --token-file FILE   bearer token (default: $VMFERRY_TOKEN)\n"
	    "      --cacert FILE       trust this CA or self-signed certificate\n"
	    "      --pin-sha256 B64    also require this server public key\n"
	    "      --insecure          do not verify the server (loudly)\n"
	    "      --cache DIR         cache directory (default:\n"
	    "                          $XDG_CACHE_HOME/vmferry or ~/.cache/vmferry)\n"
	    "      --key-file FILE     your key; created (0600) for a new copy if\n"
	    "                          absent (default: $XDG_CONFIG_HOME/vmferry/\n"
	    "                          user.key)\n"
	    "      --passphrase        protect the copy with a passphrase instead,\n"
	    "                          asked on the terminal (twice for a new copy)\n"
	    "      --passphrase-file FILE  the passphrase: FILE's first line (0600)\n"
	    "      --manifest-sha256 HEX  plain exports: require the manifest to\n"
	    "                          have this SHA-256 (64 hex digits)\n"
	    "      --read-only         refuse writes (default: writable; changes\n"
	    "                          stay in the local copy until synced)\n"
	    "      --sync-interval SECS  upload changes this often (default 30;\n"
	    "                          0: only on vmferry sync and unmount)\n"
	    "      --no-sync           do not sync at unmount\n"
	    "      --ephemeral         destroy the local copy at unmount, after\n"
	    "                          the final sync (default: the image's\n"
	    "                          policy, else --keep)\n"
	    "      --keep              keep the encrypted copy for a faster next\n"
	    "                          start (unless the policy says ephemeral)\n"
	    "      --max-cache SIZE    bound the local copy's disk use (e.g. 2G):\n"
	    "                          clean blocks are evicted, least recently\n"
	    "                          used first; unsynced ones never are\n"
	    "      --check-interval SECS  check the copy's expiry and renew its\n"
	    "                          offline clock this often (default 60)\n"
	    "      --no-hydrate        fetch only what is read (no prefetch of\n"
	    "                          the boot profile either)\n"
	    "      --compress=auto|on|off  ask the server for zstd-compressed\n"
	    "                          ranges (it compresses one only when that\n"
	    "                          saves at least 1/16): auto (default)\n"
	    "                          measures both ways on hydration's ranges\n"
	    "                          and asks only while it is faster\n"
	    "      --no-compress       the same as --compress=off\n"
	    "      --max-rate RATE     cap background fetching, bytes/s (e.g. 5M)\n"
	    "      --no-profile        neither record, upload nor prefetch a boot\n"
	    "                          profile (the order blocks are first read)\n"
	    "      --profile-seconds SECS  upload the profile after this long\n"
	    "                          (default 120; 0: only at unmount)\n"
	    "      --io-timeout SECS   fail a read with EIO after this long without\n"
	    "                          a verified block (default 60); a request\n"
	    "                          that stalls for min(30 s, SECS) is retried\n"
	    "      --connect-timeout SECS  (default 10)\n"
	    "      --readahead SIZE    extra bytes fetched after a missed read\n"
	    "                          (default 256K)\n"
	    "      --log FILE          log here when in the background (default:\n"
	    "                          syslog)\n"
	    "  -D, --debug CATS        debug categories: fetch,cache,fuse,hydrate,all\n"
	    "  -h, --help              this help\n");
}

static int parse_opts(int argc, char **argv, struct mount_opts *o)
{
	enum {
		OPT_TOKEN_FILE = 256,
		OPT_CACERT,
		OPT_PIN,
		OPT_INSECURE,
		OPT_CACHE,
		OPT_KEY_FILE,
		OPT_PASSPHRASE,
		OPT_PASSPHRASE_FILE,
		OPT_NO_HYDRATE,
		OPT_NO_COMPRESS,
		OPT_COMPRESS,
		OPT_MAX_RATE,
		OPT_IO_TIMEOUT,
		OPT_CONNECT_TIMEOUT,
		OPT_READAHEAD,
		OPT_LOG,
		OPT_READ_ONLY,
		OPT_NO_SYNC,
		OPT_SYNC_INTERVAL,
		OPT_EPHEMERAL,
		OPT_KEEP,
		OPT_CHECK_INTERVAL,
		OPT_MAX_CACHE,
		OPT_MANIFEST_SHA256,
		OPT_NO_PROFILE,
		OPT_PROFILE_SECONDS,
	};
	static const struct option longopts[] = {
	    {"foreground", no_argument, NULL, 'f'},
	    {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
	    {"cacert", required_argument, NULL, OPT_CACERT},
	    {"pin-sha256", required_argument, NULL, OPT_PIN},
	    {"insecure", no_argument, NULL, OPT_INSECURE},
	    {"cache", required_argument, NULL, OPT_CACHE},
	    {"key-file", required_argument, NULL, OPT_KEY_FILE},
	    {"passphrase", no_argument, NULL, OPT_PASSPHRASE},
	    {"passphrase-file", required_argument, NULL, OPT_PASSPHRASE_FILE},
	    {"no-hydrate", no_argument, NULL, OPT_NO_HYDRATE},
	    {"no-compress", no_argument, NULL, OPT_NO_COMPRESS},
	    {"compress", required_argument, NULL, OPT_COMPRESS},
	    {"max-rate", required_argument, NULL, OPT_MAX_RATE},
	    {"io-timeout", required_argument, NULL, OPT_IO_TIMEOUT},
	    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
	    {"readahead", required_argument, NULL, OPT_READAHEAD},
	    {"log", required_argument, NULL, OPT_LOG},
	    {"read-only", no_argument, NULL, OPT_READ_ONLY},
	    {"no-sync", no_argument, NULL, OPT_NO_SYNC},
	    {"sync-interval", required_argument, NULL, OPT_SYNC_INTERVAL},
	    {"ephemeral", no_argument, NULL, OPT_EPHEMERAL},
	    {"keep", no_argument, NULL, OPT_KEEP},
	    {"check-interval", required_argument, NULL, OPT_CHECK_INTERVAL},
	    {"max-cache", required_argument, NULL, OPT_MAX_CACHE},
	    {"manifest-sha256", required_argument, NULL, OPT_MANIFEST_SHA256},
	    {"no-profile", no_argument, NULL, OPT_NO_PROFILE},
	    {"profile-seconds", required_argument, NULL, OPT_PROFILE_SECONDS},
	    {"debug", required_argument, NULL, 'D'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	o->compress = ZPOLICY_AUTO;
	o->io_timeout_s = 60;
	o->sync_interval_s = 30;
	o->profile_s = 120;
	o->connect_timeout_s = 10;
	o->readahead = 256 * 1024;
	o->check_interval_s = 60;
	optind = 1;
	while ((c = getopt_long(argc, argv, "fD:h", longopts, NULL)) != -1) {
		const char *what = NULL;
		int r = 0;

		switch (c) {
		case 'f':
			o->foreground = true;
			break;
		case OPT_TOKEN_FILE:
			o->token_file = optarg;
			break;
		case OPT_CACERT:
			o->cacert = optarg;
			break;
		case OPT_PIN:
			o->pin = optarg;
			break;
		case OPT_INSECURE:
			o->insecure = true;
			break;
		case OPT_CACHE:
			o->cache_dir = optarg;
			break;
		case OPT_KEY_FILE:
			o->keys.key_file = optarg;
			break;
		case OPT_PASSPHRASE:
			o->keys.passphrase = true;
			break;
		case OPT_PASSPHRASE_FILE:
			o->keys.passphrase_file = optarg;
			break;
		case OPT_NO_COMPRESS:
			o->compress = ZPOLICY_OFF;
			break;
		case OPT_COMPRESS:
			if (zpolicy_parse(optarg, &o->compress) < 0) {
				log_error("--compress: invalid value \"%s\" "
					  "(auto, on or off)",
					  optarg);
				return 2;
			}
			break;
		case OPT_NO_HYDRATE:
			o->no_hydrate = true;
			break;
		case OPT_NO_PROFILE:
			o->no_profile = true;
			break;
		case OPT_PROFILE_SECONDS:
			what = "--profile-seconds";
			r = parse_duration(optarg, &o->profile_s);
			break;
		case OPT_MAX_RATE:
			what = "--max-rate";
			r = parse_size(optarg, &o->max_rate);
			break;
		case OPT_IO_TIMEOUT:
			what = "--io-timeout";
			r = parse_duration(optarg, &o->io_timeout_s);
			break;
		case OPT_CONNECT_TIMEOUT:
			what = "--connect-timeout";
			r = parse_duration(optarg, &o->connect_timeout_s);
			break;
		case OPT_READAHEAD:
			what = "--readahead";
			r = parse_size(optarg, &o->readahead);
			break;
		case OPT_LOG:
			o->log_file = optarg;
			break;
		case OPT_READ_ONLY:
			o->read_only = true;
			break;
		case OPT_NO_SYNC:
			o->no_sync = true;
			break;
		case OPT_SYNC_INTERVAL:
			what = "--sync-interval";
			r = parse_duration(optarg, &o->sync_interval_s);
			break;
		case OPT_EPHEMERAL:
			o->ephemeral = true;
			break;
		case OPT_KEEP:
			o->keep = true;
			break;
		case OPT_MAX_CACHE:
			what = "--max-cache";
			r = parse_size(optarg, &o->max_cache);
			if (r == 0 && o->max_cache == 0)
				r = -EINVAL;
			break;
		case OPT_CHECK_INTERVAL:
			what = "--check-interval";
			r = parse_duration(optarg, &o->check_interval_s);
			if (r == 0 && o->check_interval_s == 0)
				r = -EINVAL;
			break;
		case OPT_MANIFEST_SHA256:
			what = "--manifest-sha256";
			o->has_manifest_pin = true;
			r = strlen(optarg) == VMF_HASH_HEX_LEN
				? hash_from_hex(optarg, o->manifest_pin,
						VMF_HASH_LEN)
				: -EINVAL;
			break;
		case 'D':
			what = "--debug";
			r = log_enable_debug(optarg);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return 2;
		}
		if (r < 0) {
			log_error("%s: invalid value \"%s\"", what, optarg);
			return 2;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		return 2;
	}
	if (local_key_opts_check(&o->keys, "") < 0)
		return 2;
	if (o->ephemeral && o->keep) {
		log_error("--ephemeral and --keep: choose one");
		return 2;
	}
	if (o->ephemeral && o->no_sync) {
		log_error("--ephemeral with --no-sync would destroy unsynced "
			  "changes: choose one");
		return 2;
	}
	o->url = argv[optind];
	o->mountpoint = argv[optind + 1];
	return 0;
}

static int read_token(const struct mount_opts *o, char **ret)
{
	return local_load_token(o->token_file, ret);
}

/* Before the fork: a passphrase is asked on the terminal (twice for a
 * new copy), and a copy wrapped by the other kind of key is refused. */
static int load_user_key(struct mount *m)
{
	int r = local_copy_dir(m->o.cache_dir, &m->url, m->cache_path,
			       sizeof(m->cache_path));

	if (r < 0)
		return log_error_errno(r, "cache directory: %m (use --cache "
					  "DIR)");
	return local_user_secret(&m->o.keys, m->cache_path, true, &m->user);
}

/* Fork: the parent waits for the child to say the mount is up. */
static int go_background(struct mount *m)
{
	int fds[2];
	pid_t pid;
	char c;
	ssize_t n;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return log_error_errno(-errno, "pipe: %m");
	pid = fork();
	if (pid < 0)
		return log_error_errno(-errno, "fork: %m");
	if (pid > 0) {
		/* The parent only waits: its copies of the secrets go now. */
		keys_user_fini(&m->user);
		if (m->token)
			crypto_cleanse(m->token, strlen(m->token));
		close(fds[1]);
		do
			n = read(fds[0], &c, 1);
		while (n < 0 && errno == EINTR);
		if (n == 1 && c == 'O')
			_exit(0);
		/* The child printed its error on our shared stderr. */
		waitpid(pid, NULL, 0);
		_exit(1);
	}
	close(fds[0]);
	m->notify_fd = fds[1];
	if (setsid() < 0)
		log_warn("setsid: %m");
	return 0;
}

/* Tell the parent we are mounted, then leave the terminal. */
static void notify_mounted(struct mount *m)
{
	int fd;

	if (m->notify_fd < 0)
		return;
	fd = open(m->o.log_file ? m->o.log_file : "/dev/null",
		  O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (!m->o.log_file && !getenv("VMFERRY_NO_DAEMON_SYSLOG"))
		log_use_syslog();
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		close(fd);
	}
	(void)full_write(m->notify_fd, "O", 1); /* parent gone: fine */
	close(m->notify_fd);
	m->notify_fd = -1;
}

static int start_fetch(struct mount *m)
{
	struct fetch_config cfg = {0};
	char pin[256];
	int r;

	cfg.base_url = m->url.base;
	cfg.token = m->token;
	if (m->o.plain) {
		/* Whole URLs, possibly on other hosts after a redirect. */
		cfg.base_url = "";
		cfg.allow_plain = !plain_url_is_tls(m->o.url);
	}
	cfg.cacert = m->o.cacert;
	cfg.insecure = m->o.insecure;
	cfg.compress = m->o.compress;
	if (m->o.pin) {
		snprintf(pin, sizeof(pin), "sha256//%s", m->o.pin);
		cfg.pin_sha256 = pin;
	}
	cfg.connect_timeout_s = (long)m->o.connect_timeout_s;
	/* A request that receives nothing for this long is abandoned and
	 * retried: never longer than a reader is willing to wait. */
	cfg.stall_timeout_s =
	    m->o.io_timeout_s < 30 ? (long)m->o.io_timeout_s : 30;
	cfg.max_inflight = 8;
	cfg.max_background = 4;
	if (m->o.insecure)
		remote_warn_insecure();
	r = fetch_new(&cfg, &m->fetch);
	if (r < 0)
		return log_error_errno(r, "starting the fetch engine: %m");
	if (m->o.max_rate)
		fetch_set_background_rate(m->fetch, m->o.max_rate);
	return 0;
}

static int open_cache(struct mount *m, uint64_t *ret_prev_version)
{
	uint8_t cache_id[CRYPTO_CACHE_ID_LEN], data_key[CRYPTO_KEY_LEN];
	_cleanup_free_ void *val = NULL;
	uint64_t prev = 0;
	size_t len;
	int r;

	r = local_copy_dir(m->o.cache_dir, &m->url, m->cache_path,
			   sizeof(m->cache_path));
	if (r < 0)
		return log_error_errno(r, "cache directory: %m (use --cache "
					  "DIR)");
	r = mkdir_p(m->cache_path, 0700);
	if (r < 0)
		return log_error_errno(r, "cache directory %s: %m",
				       m->cache_path);
	r = local_lock(m->cache_path, &m->lock_fd);
	if (r == -EBUSY) {
		log_error("the local copy in %s is in use by another mount",
			  m->cache_path);
		return r;
	}
	if (r < 0)
		return log_error_errno(r, "locking %s: %m", m->cache_path);
	/* m->user stays until open_copy() is done: a destroyed copy is
	 * opened again, as a new one, under the same key. */
	r = local_open_keys(m->cache_path, &m->user, cache_id, data_key);
	if (r < 0)
		return r;
	r = cache_open(m->cache_path, data_key, cache_id, 0, &m->cache);
	memcpy(m->data_key, data_key, sizeof(data_key));
	memcpy(m->cache_id, cache_id, sizeof(cache_id));
	crypto_cleanse(data_key, sizeof(data_key));
	if (r < 0)
		return log_error_errno(r, "opening the cache in %s: %m",
				       m->cache_path);
	if (cache_meta_get(m->cache, "version", &val, &len) == 0 &&
	    parse_u64(val, &prev) < 0)
		prev = 0;
	*ret_prev_version = prev;
	return 0;
}

/* Bind the cache to the version being mounted (after the dirty check:
 * a cache with unsynced changes keeps the version they were made on),
 * keeping its manifest header for an offline start. */
static int bind_version(struct mount *m, const struct manifest_header *h)
{
	uint8_t enc[MANIFEST_HEADER_SIZE];
	char ver[32];
	int r;

	snprintf(ver, sizeof(ver), "%" PRIu64, h->version);
	manifest_header_encode(h, enc);
	r = cache_meta_put(m->cache, "version", ver, strlen(ver));
	if (r == 0)
		r = cache_meta_put(m->cache, "url", m->o.url, strlen(m->o.url));
	if (r == 0)
		r = cache_meta_put(m->cache, "header", enc, sizeof(enc));
	if (r < 0)
		return log_error_errno(r, "writing the cache in %s: %m",
				       m->cache_path);
	return 0;
}

/* The copy's lifecycle for status: keep or ephemeral, expiry, offline
 * clock, seconds left (null: no limit). */
static int add_lifecycle(struct mount *m, json_t *o)
{
	struct lifecycle lc = m->lc;
	int64_t left;

	if (m->expiry)
		expiry_get(m->expiry, &lc);
	lifecycle_check(&lc, now_wall(), &left);
	return json_object_update_new(
	    o, json_pack("{s:b, s:b, s:I, s:I, s:I, s:o}", "ephemeral",
			 lc.ephemeral, "offline", m->offline, "expires",
			 (json_int_t)lc.expires, "max_offline",
			 (json_int_t)lc.max_offline_s, "last_contact",
			 (json_int_t)lc.last_contact, "time_left",
			 left == INT64_MAX ? json_null()
					   : json_integer((json_int_t)left)));
}

/* The boot profile's part of "status": what was prefetched, what this
 * session recorded, and the requests the guest waited for (demand). */
static int add_profile(struct mount *m, json_t *o)
{
	struct hydrate_stats hs;
	struct fetch_stats fs;
	size_t recorded = 0;
	bool closed = false;

	hydrate_get_stats(m->hydrate, &hs);
	fetch_get_stats(m->fetch, &fs);
	if (m->prof)
		profile_count(m->prof, &recorded, &closed);
	return json_object_update_new(
	    o, json_pack("{s:I, s:I, s:I, s:b, s:I, s:b}", "demand_requests",
			 (json_int_t)fs.demand_requests, "profile_blocks",
			 (json_int_t)hs.profile_blocks, "profile_fetched",
			 (json_int_t)hs.profile_fetched, "profile_done",
			 !m->hydrate || hs.profile_done, "profile_recorded",
			 (json_int_t)recorded, "profile_uploaded",
			 profile_upload_done(m->pu)));
}

/* "complete_after_s": seconds from the daemon's start until hydration
 * found the copy complete, or null (not yet, or completed otherwise). */
static int add_complete_after(struct mount *m, json_t *o)
{
	struct hydrate_stats hs;

	hydrate_get_stats(m->hydrate, &hs);
	return json_object_set_new(
	    o, "complete_after_s",
	    hs.complete_ns > m->started_ns
		? json_real((double)(hs.complete_ns - m->started_ns) / 1e9)
		: json_null());
}

/* The compression policy's part of "status" (zpolicy.h): the policy,
 * the way in use, and the goodput averages it chose from (bytes/s, 0
 * while a way has no sample). */
static int add_compress(struct mount *m, json_t *o)
{
	struct fetch_stats fs;
	const struct zpolicy_stats *z = &fs.compress;

	fetch_get_stats(m->fetch, &fs);
	return json_object_update_new(
	    o,
	    json_pack("{s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I}", "compress",
		      zpolicy_name(z->mode), "compress_asking", z->zstd,
		      "goodput_zstd_bps", (json_int_t)z->goodput[ZPOLICY_ZSTD],
		      "goodput_raw_bps", (json_int_t)z->goodput[ZPOLICY_RAW],
		      "samples_zstd", (json_int_t)z->samples[ZPOLICY_ZSTD],
		      "samples_raw", (json_int_t)z->samples[ZPOLICY_RAW],
		      "compress_probes", (json_int_t)z->probes,
		      "compress_switches", (json_int_t)z->switches));
}

/* "sync": run a sync now and answer {"version", "blocks", "message"} or
 * {"error", "conflict"}. */
static int ctl_sync(struct mount *m, char **ret_reply)
{
	uint64_t version = 0, blocks = 0;
	char why[256];
	json_t *o;
	int r;

	if (!m->wb) {
		o = json_pack("{s:s}", "error", "mounted read-only");
	} else {
		r = writeback_sync(m->wb, &version, &blocks, why);
		if (r < 0)
			o = json_pack("{s:s, s:b, s:s}", "error", why,
				      "conflict", r == -ESTALE, "errno",
				      strerror(-r));
		else
			o = json_pack("{s:I, s:I, s:s}", "version",
				      (json_int_t)version, "blocks",
				      (json_int_t)blocks, "message", why);
	}
	if (!o)
		return -ENOMEM;
	*ret_reply = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return *ret_reply ? 0 : -ENOMEM;
}

static int ctl_handler(void *opaque, const char *cmd, char **ret_reply)
{
	struct mount *m = opaque;
	struct image_stats is;
	struct fetch_stats fs;
	double secs, rate;
	uint64_t now;
	json_t *o;
	char *s;

	if (strcmp(cmd, "sync") == 0)
		return ctl_sync(m, ret_reply);
	if (strcmp(cmd, "status") != 0)
		return -EINVAL;
	image_get_stats(m->im, &is);
	fetch_get_stats(m->fetch, &fs);
	now = now_ns();
	secs = (double)(now - m->started_ns) / 1e9;
	/* Rate since the previous status query (or since the mount). */
	if (!m->rate_ns)
		m->rate_ns = m->started_ns;
	rate = now > m->rate_ns ? (double)(fs.bytes - m->rate_bytes) * 1e9 /
				      (double)(now - m->rate_ns)
				: 0;
	m->rate_bytes = fs.bytes;
	m->rate_ns = now;
	o = json_pack(
	    "{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
	    "s:f, s:b, s:b, s:i, s:s, s:I, s:f, s:I, s:I, s:I}",
	    "image", m->url.name, "server", m->url.base, "version",
	    (json_int_t)(m->wb ? writeback_version(m->wb) : m->version), "size",
	    (json_int_t)image_header(m->im)->image_size, "block_size",
	    (json_int_t)image_header(m->im)->block_size, "blocks_total",
	    (json_int_t)is.blocks_total, "blocks_data",
	    (json_int_t)is.blocks_data, "blocks_zero",
	    (json_int_t)is.blocks_zero, "blocks_cached",
	    (json_int_t)is.blocks_cached, "bytes_fetched", (json_int_t)fs.bytes,
	    "requests", (json_int_t)fs.requests, "uptime_s", secs, "hydrating",
	    hydrate_running(m->hydrate), "complete", image_complete(m->im),
	    "pid", (int)getpid(), "cache", m->cache_path, "verify_failures",
	    (json_int_t)is.verify_failures, "rate_bps", rate, "blocks_dirty",
	    (json_int_t)is.blocks_dirty, "written_bytes",
	    (json_int_t)is.written_bytes, "blocks_reused",
	    (json_int_t)is.blocks_reused);
	if (o && json_object_update_new(
		     o, json_pack("{s:I, s:I, s:I, s:I}", "max_cache",
				  (json_int_t)m->o.max_cache, "evicted_blocks",
				  (json_int_t)is.evicted_blocks, "read_bytes",
				  (json_int_t)is.read_bytes, "bytes_wire",
				  (json_int_t)fs.wire_bytes)) < 0) {
		json_decref(o);
		o = NULL;
	}
	if (o && add_profile(m, o) < 0) {
		json_decref(o);
		o = NULL;
	}
	if (o && add_lifecycle(m, o) < 0) {
		json_decref(o);
		o = NULL;
	}
	if (o && add_compress(m, o) < 0) {
		json_decref(o);
		o = NULL;
	}
	if (o && json_object_update_new(
		     o, json_pack("{s:I, s:b}", "zeroed_bytes",
				  (json_int_t)is.zeroed_bytes, "read_only",
				  m->o.read_only)) < 0) {
		json_decref(o);
		o = NULL;
	}
	if (o && add_complete_after(m, o) < 0) {
		json_decref(o);
		o = NULL;
	}
	if (!o)
		return -ENOMEM;
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s)
		return -ENOMEM;
	*ret_reply = s;
	return 0;
}

/* A directory; its canonical path goes to m->mp_abs (before the mount
 * covers it, and before go_background() leaves the working directory). */
static int check_mountpoint(struct mount *m)
{
	const char *mp = m->o.mountpoint;
	struct stat st;

	if (stat(mp, &st) < 0)
		return log_error_errno(-errno, "mountpoint %s: %m", mp);
	if (!S_ISDIR(st.st_mode)) {
		log_error("mountpoint %s is not a directory", mp);
		return -ENOTDIR;
	}
	if (!realpath(mp, m->mp_abs))
		return log_error_errno(-errno, "mountpoint %s: %m", mp);
	return 0;
}

static bool files_open(void *opaque)
{
	struct mount *m = opaque;

	return atomic_load(&m->fctx.open_files) > 0;
}

/* Called by the mount watch: the mount left this namespace, nothing is
 * open on it, and the loop did not end, so a copy of the mount in
 * another mount namespace holds the connection.  End as the unmount the
 * user asked for (the final sync, the lease); the main thread only, so
 * no other thread's system call is interrupted. */
static void on_unmounted_elsewhere(void *opaque)
{
	struct mount *m = opaque;

	log_info("%s was unmounted, but another mount namespace still holds "
		 "a copy of the mount: ending (that copy stops working)",
		 m->mp_abs);
	atomic_store(&m->unmounted_elsewhere, true);
	pthread_kill(m->main_thread, SIGTERM);
}

/* How long after the mount left the namespace an idle daemon waits for
 * the kernel to end the loop by itself (an ordinary unmount). */
#define MOUNTWATCH_GRACE_NS 2000000000ull

static int start_mountwatch(struct mount *m)
{
	struct mountwatch_config cfg = {
	    .mountpoint = m->mp_abs,
	    .grace_ns = MOUNTWATCH_GRACE_NS,
	    .in_use = files_open,
	    .gone = on_unmounted_elsewhere,
	    .opaque = m,
	};
	int r;

	m->main_thread = pthread_self();
	r = mountwatch_start(&cfg, &m->watch);
	if (r < 0)
		return log_error_errno(r, "watching the mount on %s: %m",
				       m->mp_abs);
	return 0;
}

static int start_fuse(struct mount *m)
{
	char fsname[128], prog[] = "vmferry", dash_o[] = "-o";
	char *argv[] = {prog, dash_o, fsname, NULL};
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);

	snprintf(fsname, sizeof(fsname),
		 "fsname=vmferry:%s,subtype=vmferry,max_read=1048576",
		 m->url.name);
	m->fctx.im = m->im;
	snprintf(m->fctx.file_name, sizeof(m->fctx.file_name), "%s.img",
		 m->url.name);
	m->fctx.size = image_header(m->im)->image_size;
	m->fctx.mtime = time(NULL);
	m->fctx.ctl_path = m->ctl_path;
	m->fctx.read_only = m->o.read_only;
	m->fuse = fuse_new(&args, fuse_ops_get(),
			   sizeof(struct fuse_operations), &m->fctx);
	fuse_opt_free_args(&args); /* fuse_new may have grown them */
	if (!m->fuse) {
		log_error("fuse_new failed");
		return -EIO;
	}
	if (fuse_mount(m->fuse, m->o.mountpoint) < 0) {
		log_error("cannot mount on %s (is /dev/fuse usable and "
			  "fusermount3 installed?)",
			  m->o.mountpoint);
		fuse_destroy(m->fuse);
		m->fuse = NULL;
		return -EIO;
	}
	if (fuse_set_signal_handlers(fuse_get_session(m->fuse)) < 0) {
		log_error("cannot install signal handlers");
		return -EIO;
	}
	return start_mountwatch(m);
}

/* Renew at a third of the lease's length, so two renewals can fail
 * before it lapses. */
static uint64_t lease_renew_interval(const struct lease *l)
{
	int64_t len = l->expires - l->since;

	return len > 3 ? (uint64_t)(len / 3) : 1;
}

/* A read-write mount holds the image's lease (renewed by write-back).
 * Someone else's lease refuses the mount; a token without the write
 * grant mounts read-only. */
static int take_lease(struct mount *m)
{
	_cleanup_free_ void *prev = NULL;
	size_t len;
	char why[256];
	int r;

	lease_holder_name(m->holder, sizeof(m->holder));
	if (cache_meta_get(m->cache, "lease_id", &prev, &len) < 0)
		prev = NULL;
	r = lease_acquire(m->fetch, m->url.name, m->holder, prev, m->version,
			  &m->lease, why);
	if (r == -EACCES || r == -ENOENT || r == -EIO) {
		/* No write grant, or a server without leases (a plain HTTP
		 * server or cache in front of one). */
		log_info("%s: no lease (%s): mounted read-only", m->url.name,
			 r == -EACCES ? "the token has no write grant" : why);
		m->o.read_only = true;
		m->fctx.read_only = true;
		return 0;
	}
	if (r == -EBUSY) {
		log_error("%s: cannot mount read-write: %s; mount with "
			  "--read-only to read it, or ask the administrator "
			  "(vmferry-server lease break)",
			  m->o.url, why);
		return r;
	}
	if (r < 0) {
		log_error("%s: taking the lease: %s (%s)", m->o.url,
			  remote_strerror(r), why);
		return r;
	}
	r = cache_meta_put(m->cache, "lease_id", m->lease.id,
			   strlen(m->lease.id));
	if (r < 0)
		return log_error_errno(r, "writing the cache in %s: %m",
				       m->cache_path);
	return 0;
}

/* Close the copy (cache and lock) so that it can be destroyed. */
static void close_copy(struct mount *m)
{
	cache_free(m->cache);
	m->cache = NULL;
	if (m->lock_fd >= 0)
		close(m->lock_fd);
	m->lock_fd = -1;
	crypto_cleanse(m->data_key, sizeof(m->data_key));
}

/* Destroy the copy (closed first): key, then files. */
static void destroy_copy(struct mount *m)
{
	int r;

	close_copy(m);
	r = lifecycle_destroy(m->cache_path);
	if (r < 0)
		log_error_errno(r, "destroying the local copy in %s: %m",
				m->cache_path);
	else
		log_info("destroyed the local copy in %s", m->cache_path);
}

/* Open the copy and check its lifecycle record (into m->lc; all zero
 * when it has none).  A copy that expired, was offline too long, or whose
 * record was edited is destroyed, key first; online a fresh copy then
 * takes its place, offline the mount is refused (-EKEYEXPIRED). */
static int open_and_check(struct mount *m, bool online, uint64_t *ret_prev);

static int open_copy(struct mount *m, bool online, uint64_t *ret_prev)
{
	int r = open_and_check(m, online, ret_prev);

	keys_user_fini(&m->user); /* not needed again */
	return r;
}

static int open_and_check(struct mount *m, bool online, uint64_t *ret_prev)
{
	struct lifecycle old;
	enum lifecycle_state s;
	char why[256];
	int r;

	for (int pass = 0;; pass++) {
		r = open_cache(m, ret_prev);
		if (r < 0)
			return r;
		r = lifecycle_verify(m->cache_path, m->data_key, m->cache_id,
				     &old);
		if (r == -ENOENT) {
			memset(&m->lc, 0, sizeof(m->lc));
			return 0;
		}
		if (r == 0) {
			s = lifecycle_check(&old, now_wall(), NULL);
			if (s == LIFECYCLE_OK) {
				m->lc = old;
				return 0;
			}
			lifecycle_describe(&old, s, why, sizeof(why));
		} else if (r == -EBADMSG) {
			snprintf(why, sizeof(why),
				 "its lifecycle record was edited or is "
				 "damaged (treated as expired)");
		} else {
			return log_error_errno(r,
					       "reading the lifecycle of "
					       "%s: %m",
					       m->cache_path);
		}
		log_error("the local copy in %s: %s", m->cache_path, why);
		destroy_copy(m);
		if (!online || pass > 0)
			return -EKEYEXPIRED;
	}
}

/* Errors that mean "the server cannot be reached", not "it said no". */
static bool unreachable(int r)
{
	return r == -ECONNREFUSED || r == -EHOSTUNREACH || r == -ETIMEDOUT ||
	       r == -ENETUNREACH || r == -ECONNRESET || r == -EIO;
}

/* The server is unreachable: start from the kept copy alone, if it has
 * a valid lifecycle record and the header of its version. */
static int open_offline(struct mount *m, const char *server_why,
			struct manifest_header *ret_hdr)
{
	_cleanup_free_ void *enc = NULL;
	uint64_t prev = 0;
	size_t len;
	int r;

	/* Nothing is created offline: without a kept copy there is no
	 * start. */
	r = local_copy_dir(m->o.cache_dir, &m->url, m->cache_path,
			   sizeof(m->cache_path));
	if (r == 0 && lifecycle_read(m->cache_path, &m->lc) < 0)
		r = -ENOENT;
	if (r < 0) {
		log_error("%s: the server cannot be reached (%s) and there is "
			  "no local copy to start from in %s",
			  m->o.url, server_why, m->cache_path);
		return -EHOSTUNREACH;
	}
	r = open_copy(m, false, &prev);
	if (r == -EKEYEXPIRED)
		log_error("%s: the server cannot be reached and the local "
			  "copy expired: not mounted",
			  m->o.url);
	if (r < 0)
		return r;
	if (!m->lc.url[0] || prev == 0 ||
	    cache_meta_get(m->cache, "header", &enc, &len) < 0 ||
	    manifest_header_parse(enc, len, ret_hdr) < 0 ||
	    ret_hdr->version != prev) {
		log_error("%s: the server cannot be reached (%s) and there is "
			  "no local copy to start from in %s",
			  m->o.url, server_why, m->cache_path);
		return -EHOSTUNREACH;
	}
	m->version = prev;
	m->offline = true;
	log_warn("%s: the server cannot be reached (%s): mounting the local "
		 "copy offline (version %" PRIu64 "); reads of blocks not "
		 "cached fail, changes go up when the server is back",
		 m->o.url, server_why, prev);
	return 0;
}

/* The record for this mount, from the server's policy (online) or as
 * kept (offline); refuses (and destroys the copy) when the policy says
 * the image's copies have expired. */
static int start_lifecycle(struct mount *m, const struct remote_image *img,
			   const struct manifest_header *hdr)
{
	int64_t now = now_wall();
	struct lifecycle lc = m->lc;
	enum lifecycle_state s;
	char why[256];
	int r;

	snprintf(lc.url, sizeof(lc.url), "%s", m->o.url);
	lc.version = hdr->version;
	lc.image_size = hdr->image_size;
	if (lc.last_seen < now)
		lc.last_seen = now;
	if (img) {
		lc.expires = img->expires;
		lc.max_offline_s = (int64_t)img->max_offline_s;
		lc.last_contact = now;
		lc.ephemeral = img->ephemeral || m->o.ephemeral;
		if (img->ephemeral && m->o.keep)
			log_warn("%s: the image's policy makes local copies "
				 "ephemeral: --keep is ignored",
				 m->o.url);
	} else if (m->o.ephemeral || m->o.keep) {
		lc.ephemeral = m->o.ephemeral;
	}
	s = lifecycle_check(&lc, now, NULL);
	if (s != LIFECYCLE_OK) {
		lifecycle_describe(&lc, s, why, sizeof(why));
		log_error("%s: the image's policy: local copies %s: not "
			  "mounted",
			  m->o.url, why);
		destroy_copy(m);
		return -EKEYEXPIRED;
	}
	r = lifecycle_write(m->cache_path, &lc, m->data_key, m->cache_id);
	if (r < 0)
		return log_error_errno(r, "writing the lifecycle of %s: %m",
				       m->cache_path);
	m->lc = lc;
	return 0;
}

/* Offline, a read-write mount goes on under the lease id it had: the
 * write-back thread renews it (or takes a new one) once the server is
 * back (it tries every 5 s), and the commit waits for that. */
static void offline_lease(struct mount *m)
{
	_cleanup_free_ void *prev = NULL;
	size_t len = 0;

	lease_holder_name(m->holder, sizeof(m->holder));
	memset(&m->lease, 0, sizeof(m->lease));
	if (cache_meta_get(m->cache, "lease_id", &prev, &len) == 0 &&
	    len == VMF_LEASE_ID_HEX_LEN)
		memcpy(m->lease.id, prev, len);
	m->lease.expires = 15; /* renewal attempts every 5 s until back */
}

static void on_expired(void *opaque, enum lifecycle_state s, const char *why);

/* The record's display counts, from the image. */
static void fill_counts(void *opaque, struct lifecycle *lc)
{
	struct mount *m = opaque;
	struct image_stats is;

	image_get_stats(m->im, &is);
	lc->blocks_data = is.blocks_data;
	lc->blocks_cached = is.blocks_cached;
	lc->blocks_dirty = is.blocks_dirty;
}

static int start_expiry(struct mount *m)
{
	struct expiry_config cfg = {
	    .dir = m->cache_path,
	    .name = m->url.name,
	    .lc = m->lc,
	    .interval_s = m->o.check_interval_s,
	    .no_policy = m->o.plain,
	    .expired = on_expired,
	    .counts = fill_counts,
	    .opaque = m,
	};
	int r;

	memcpy(cfg.data_key, m->data_key, sizeof(cfg.data_key));
	memcpy(cfg.cache_id, m->cache_id, sizeof(cfg.cache_id));
	r = expiry_start(&cfg, m->fetch, &m->expiry);
	crypto_cleanse(cfg.data_key, sizeof(cfg.data_key));
	if (r < 0)
		return log_error_errno(r, "starting the expiry check: %m");
	return 0;
}

/* Called by the expiry thread: stop serving, then end the loop as a
 * signal would (teardown() destroys the copy). */
static void on_expired(void *opaque, enum lifecycle_state s, const char *why)
{
	struct mount *m = opaque;

	log_error("%s: the local copy %s: reads fail from now on; unmounting "
		  "and destroying it",
		  m->o.url, why);
	atomic_store(&m->fctx.stopped, true);
	atomic_store(&m->expired, (int)s);
	kill(getpid(), SIGTERM);
}

/* A read-only mount pins its version so retention keeps it.  Without a
 * pin (a plain HTTP server, or a server that refuses) the mount still
 * works: the version may only be dropped after enough new commits. */
static void take_pin(struct mount *m)
{
	char why[256];
	int r;

	lease_holder_name(m->holder, sizeof(m->holder));
	r = pin_keeper_start(m->fetch, m->url.name, m->holder, m->version,
			     &m->pin, why);
	if (r < 0)
		log_warn("%s: version %" PRIu64 " not pinned (%s): the server "
			 "may drop it after enough new versions",
			 m->url.name, m->version, why);
}

/* --max-cache in blocks: a sealed block takes whole 4 KiB LMDB pages
 * (68 KiB for a 64 KiB block).  At least 16 blocks. */
static int cache_blocks_for(struct mount *m, const struct manifest_header *h,
			    uint64_t *ret)
{
	uint64_t page = 4096, need = h->block_size + CRYPTO_OVERHEAD + 64;
	uint64_t per = (need + page - 1) / page * page;

	*ret = m->o.max_cache / per;
	if (*ret < 16) {
		log_error("--max-cache %" PRIu64 ": too small for this image: "
			  "at least %" PRIu64 " bytes (16 blocks of %" PRIu32
			  ")",
			  m->o.max_cache, 16 * per, h->block_size);
		return -EINVAL;
	}
	return 0;
}

/* The cache meta key of the manifest_sha256 the copy checked version's
 * manifest against (check_manifest()). */
static void manifest_sha256_key(char *key, size_t len, uint64_t version)
{
	snprintf(key, len, "manifest_sha256:%" PRIu64, version);
}

/* What version prev's manifest must hash to, into *ret (version and
 * manifest_sha256 set, as remote_get_manifest() checks them): the value
 * the copy recorded when a mount checked prev's manifest, else the one
 * the server gives for prev.  A version this copy made itself by a sync
 * has no record (its manifest was built here, never fetched), nor has a
 * copy made before the record existed.  *ret_from names the source, for
 * the log.  Returns 0 or remote_get_version()'s error (detail in
 * ret_why, 256 bytes). */
static int pending_base_sha256(struct mount *m, uint64_t prev,
			       struct remote_image *ret, const char **ret_from,
			       char *ret_why)
{
	_cleanup_free_ void *rec = NULL;
	size_t rlen = 0;
	char key[64];

	manifest_sha256_key(key, sizeof(key), prev);
	if (cache_meta_get(m->cache, key, &rec, &rlen) == 0 &&
	    rlen == VMF_HASH_LEN) {
		memset(ret, 0, sizeof(*ret));
		ret->version = prev;
		ret->has_manifest_sha256 = true;
		memcpy(ret->manifest_sha256, rec, VMF_HASH_LEN);
		*ret_from = "was recorded in this copy when a mount checked "
			    "that version";
		return 0;
	}
	*ret_from = "is the server's: this copy recorded none";
	return remote_get_version(m->fetch, m->url.name, prev, ret, ret_why);
}

/* The copy's last sync was recorded as pending (pending.h) and the
 * server moved on since: the client died between the server's commit
 * and the copy's record of it.  Send the same commit again (same id: a
 * commit that landed answers its version), built on version prev's
 * manifest, checked whole against its manifest_sha256 first (the
 * manifest may come through proxies and caches: a wrong one would make
 * the commit record wrong hashes for every block this copy did not
 * change).  Then clean the copy as the sync would have; *ret_bound is
 * the version the copy holds.  Returns 1 when finished, 0 when there
 * was nothing to finish (or the server refused the commit: it never
 * landed, the record is dropped), or a negative error when it could not
 * be finished now (logged): nothing was committed or recorded, the
 * dirty blocks and the pending record stay for a later mount, and the
 * caller's checks decide about this one. */
static int finish_pending(struct mount *m, uint64_t prev,
			  const struct manifest_header *now,
			  uint64_t *ret_bound)
{
	_cleanup_free_ struct cache_clean *clean = NULL;
	_cleanup_free_ bool *cleaned = NULL;
	_cleanup_free_ uint8_t *man = NULL;
	_cleanup_free_ void *lease = NULL;
	struct manifest_header h = *now;
	struct remote_image base;
	struct pending p;
	const char *from = "";
	char why[256], ver[32];
	uint64_t version;
	size_t len, llen;
	int r;

	if (pending_get(m->cache, &p) < 0)
		return 0;
	r = 0;
	if (p.base != prev)
		goto out;
	clean = calloc(p.n + 1, sizeof(*clean));
	cleaned = calloc(p.n + 1, sizeof(*cleaned));
	if (!clean || !cleaned) {
		r = log_oom();
		goto out;
	}
	r = pending_base_sha256(m, prev, &base, &from, why);
	if (r < 0) {
		log_error("%s: the last sync (cut short by a crash) cannot be "
			  "finished: no manifest_sha256 to check version "
			  "%" PRIu64 "'s manifest against: %s (%s)",
			  m->o.url, prev, remote_strerror(r), why);
		goto out;
	}
	/* Version prev's manifest, whole (the image's size never changes). */
	h.version = prev;
	r = remote_get_manifest(m->fetch, m->url.name, &base, &h, &man, &len,
				why);
	if (r == -EBADMSG) {
		log_error("%s: the last sync (cut short by a crash) cannot be "
			  "finished: version %" PRIu64 "'s manifest: %s; "
			  "nothing was committed (that manifest_sha256 %s)",
			  m->o.url, prev, why, from);
		goto out;
	}
	if (r < 0) {
		log_warn("%s: cannot read version %" PRIu64
			 " to finish the last sync: %s (%s)",
			 m->o.url, prev, remote_strerror(r), why);
		goto out;
	}
	h.version = 0;
	manifest_header_encode(&h, man);
	for (size_t i = 0; i < p.n; i++) {
		memcpy(man + manifest_entry_offset(p.items[i].blkno),
		       p.items[i].hash, VMF_HASH_LEN);
		clean[i].blkno = p.items[i].blkno;
		clean[i].gen = p.items[i].gen;
	}
	if (cache_meta_get(m->cache, "lease_id", &lease, &llen) < 0)
		lease = NULL;
	r = upload_commit(m->fetch, m->url.name, prev, man, len, lease, p.id,
			  &version, why);
	if (r < 0) {
		log_warn("%s: the last sync's commit could not be finished "
			 "(%s)",
			 m->o.url, why);
		if (r == -ESTALE) {
			(void)pending_clear(m->cache);
			r = 0;
		}
		goto out;
	}
	snprintf(ver, sizeof(ver), "%" PRIu64, version);
	r = cache_clean_dirty(m->cache, clean, p.n, cleaned, "version", ver,
			      strlen(ver));
	if (r == 0)
		r = pending_clear(m->cache);
	if (r < 0) {
		log_warn_errno(r, "%s: recording the last sync: %m", m->o.url);
		goto out;
	}
	log_info("%s: the last sync (cut short by a crash) landed as version "
		 "%" PRIu64 ": finished",
		 m->o.url, version);
	*ret_bound = version;
	r = 1;
out:
	pending_fini(&p);
	return r;
}

/* A plain export: descriptor, whole manifest and a range probe
 * (plain.h), then the copy.  There is no offline start: the manifest's
 * check needs the server. */
static int open_plain(struct mount *m, struct remote_image *ret_img,
		      struct manifest_header *ret_hdr, uint64_t *ret_prev)
{
	char why[512];
	int r;

	r = plain_open(m->fetch, m->o.plain_url,
		       m->o.has_manifest_pin ? m->o.manifest_pin : NULL,
		       &m->src, why, sizeof(why));
	if (r < 0) {
		log_error("%s: %s", m->url.base, why);
		return r;
	}
	memset(ret_img, 0, sizeof(*ret_img));
	ret_img->version = m->src.hdr.version;
	ret_img->size = m->src.hdr.image_size;
	ret_img->block_size = m->src.hdr.block_size;
	ret_img->manifest_size = m->src.manifest_len;
	*ret_hdr = m->src.hdr;
	m->version = m->src.hdr.version;
	return open_copy(m, true, ret_prev);
}

/* A plain export's manifest goes into the copy whole (it was checked
 * whole); a server that ignores Range gets the full download now,
 * before the file is visible, and said so on stderr. */
static int fill_plain(struct mount *m)
{
	const struct manifest_header *h = image_header(m->im);
	char why[512], size[32];
	int r;

	r = image_seed_manifest(m->im, m->src.manifest + MANIFEST_HEADER_SIZE);
	if (r == 0)
		r = image_load_manifest(m->im, 0, h->nblocks);
	if (r < 0)
		return log_error_errno(r, "%s: storing the manifest in %s: %m",
				       m->url.base, m->cache_path);
	/* The copy holds it now; the image keeps its pages. */
	free(m->src.manifest);
	m->src.manifest = NULL;
	if (m->src.ranges)
		return 0;
	if (image_complete(m->im)) {
		log_info("%s: the server %s; the local copy is complete, "
			 "nothing to fetch",
			 m->url.base, m->src.no_range);
		m->o.no_hydrate = true;
		return 0;
	}
	if (m->o.max_cache) {
		log_error("%s: the server %s, so the whole image must be "
			  "downloaded into the cache: --max-cache cannot "
			  "hold it",
			  m->url.base, m->src.no_range);
		return -EINVAL;
	}
	format_bytes(h->image_size, size, sizeof(size));
	log_warn("%s: the server %s: blocks cannot be fetched one by one, "
		 "so falling back to a full download of the image (%s) into "
		 "the cache before mounting; every block is still verified",
		 m->url.base, m->src.no_range, size);
	r = fulldl_run(m->im, m->fetch, m->src.data_url, why, sizeof(why));
	if (r < 0) {
		log_error("%s: the full download failed: %s; nothing "
			  "unverified was kept",
			  m->url.base, why);
		return r;
	}
	log_info("%s: full download complete", m->url.base);
	m->o.no_hydrate = true;
	return 0;
}

/* hydrate_profile_fn: the boot profile to prefetch, from the server
 * (docs/client.md, "Boot profiles").  None when the server has none, or
 * on any error: a profile is a hint, the mount goes on without. */
static int get_profile(void *opaque, uint64_t **ret, size_t *ret_n)
{
	struct mount *m = opaque;
	const struct manifest_header *h = image_header(m->im);
	uint64_t from = 0;
	char why[256];
	int r;

	r = remote_get_profile(m->fetch, m->url.name, h->version, h->block_size,
			       h->nblocks, ret, ret_n, &from, why);
	if (r == -ENOENT)
		log_debug(LOG_CAT_HYDRATE, "%s: no boot profile", m->url.name);
	else if (r < 0)
		log_warn("%s: boot profile: %s (%s): not prefetching",
			 m->url.name, remote_strerror(r), why);
	else
		log_info("%s: boot profile of version %" PRIu64
			 ": %zu blocks to prefetch",
			 m->url.name, from, *ret_n);
	return r;
}

/* Start hydration (unless --no-hydrate: only what is read is fetched),
 * with the boot profile first unless --no-profile. */
static int start_hydrate(struct mount *m)
{
	struct hydrate_config hcfg = {.opaque = m};
	int r;

	if (m->o.no_hydrate)
		return 0;
	if (!m->o.no_profile && !m->offline && !m->o.plain_url)
		hcfg.get_profile = get_profile;
	r = hydrate_start(&hcfg, m->im, m->fetch, &m->hydrate);
	if (r < 0)
		return log_error_errno(r, "starting hydration: %m");
	return 0;
}

/* Record this session's first-read order, for the server (nothing is
 * recorded with --no-profile or for an empty image). */
static int start_profile(struct mount *m, const struct manifest_header *h)
{
	int r;

	/* A plain export has nowhere to send it. */
	if (m->o.no_profile || m->offline || m->o.plain_url || h->nblocks == 0)
		return 0;
	r = profile_new(h->nblocks, VMF_PROFILE_MAX_BLOCKS, &m->prof);
	if (r < 0)
		return log_error_errno(r, "boot profile: %m");
	return 0;
}

/* Upload it after --profile-seconds, or at unmount. */
static int start_profile_upload(struct mount *m,
				const struct manifest_header *h)
{
	struct profile_upload_config pcfg = {
	    .name = m->url.name,
	    .version = h->version,
	    .window_s = m->o.profile_s,
	};
	int r;

	if (!m->prof || m->offline)
		return 0;
	r = profile_upload_start(&pcfg, m->prof, m->fetch, &m->pu);
	if (r < 0)
		return log_error_errno(r, "boot profile upload: %m");
	return 0;
}

/* The current version's manifest, checked whole against the
 * manifest_sha256 of the image's metadata (which comes from the server
 * itself; the manifest may come through proxies and caches) before any
 * of its hashes is used, then kept in the copy page by page.  Once per
 * version: the copy records the check, and its pages are sealed at
 * rest. */
static int check_manifest(struct mount *m, const struct remote_image *img,
			  const struct manifest_header *hdr)
{
	_cleanup_free_ uint8_t *man = NULL;
	_cleanup_free_ void *done = NULL;
	size_t len, dlen = 0;
	char key[64], why[256];
	int r;

	manifest_sha256_key(key, sizeof(key), img->version);
	if (img->has_manifest_sha256 &&
	    cache_meta_get(m->cache, key, &done, &dlen) == 0 &&
	    dlen == VMF_HASH_LEN &&
	    memcmp(done, img->manifest_sha256, VMF_HASH_LEN) == 0)
		return 0;
	r = remote_get_manifest(m->fetch, m->url.name, img, hdr, &man, &len,
				why);
	if (r == -EBADMSG) {
		log_error("%s: manifest of version %" PRIu64 ": %s", m->o.url,
			  img->version, why);
		return r;
	}
	if (r < 0) {
		log_error("%s: manifest of version %" PRIu64 ": %s (%s)",
			  m->o.url, img->version, remote_strerror(r), why);
		return r;
	}
	r = image_seed_manifest(m->im, man + MANIFEST_HEADER_SIZE);
	if (r == 0)
		r = cache_meta_put(m->cache, key, img->manifest_sha256,
				   VMF_HASH_LEN);
	if (r < 0)
		return log_error_errno(r, "%s: storing the manifest in %s: %m",
				       m->o.url, m->cache_path);
	return 0;
}

static int setup(struct mount *m)
{
	struct remote_image img;
	struct manifest_header hdr;
	struct image_config icfg = {0};
	char why[256], data_path[256], manifest_path[256];
	uint64_t prev = 0, bound = 0;
	bool unfinished = false; /* a landed sync not finished: see below */
	int64_t ndirty;
	int r;

	r = start_fetch(m);
	if (r < 0)
		return r;
	if (m->o.plain) {
		r = open_plain(m, &img, &hdr, &prev);
		if (r < 0)
			return r;
		bound = prev;
	} else {
		r = remote_get_image(m->fetch, m->url.name, &img, why);
	}
	if (m->o.plain) {
		/* Done above. */
	} else if (r < 0 && unreachable(r)) {
		r = open_offline(m, remote_strerror(r), &hdr);
		if (r < 0)
			return r;
		prev = bound = hdr.version;
		img.version = hdr.version;
	} else if (r < 0) {
		log_error("%s: %s (%s)", m->o.url, remote_strerror(r), why);
		return r;
	} else {
		r = remote_get_manifest_header(m->fetch, m->url.name, &img,
					       &hdr, why);
		if (r < 0) {
			log_error(
			    "%s: manifest of version %" PRIu64 ": %s (%s)",
			    m->o.url, img.version, remote_strerror(r), why);
			return r;
		}
		m->version = img.version;
		r = open_copy(m, true, &prev);
		if (r < 0)
			return r;
		bound = prev;
		if (prev && prev != img.version)
			unfinished = finish_pending(m, prev, &hdr, &bound) < 0;
	}
	remote_data_path(m->url.name, img.version, data_path,
			 sizeof(data_path));
	remote_manifest_path(m->url.name, img.version, manifest_path,
			     sizeof(manifest_path));
	icfg.name = m->url.name;
	icfg.data_path = m->o.plain ? m->src.data_url : data_path;
	icfg.manifest_path = m->o.plain ? m->src.manifest_url : manifest_path;
	icfg.hdr = hdr;
	icfg.io_timeout_s = m->o.io_timeout_s;
	icfg.readahead_blocks = (uint32_t)(m->o.readahead / hdr.block_size);
	icfg.prev_version = prev;
	if (m->o.max_cache) {
		r = cache_blocks_for(m, &hdr, &icfg.max_blocks);
		if (r < 0)
			return r;
	}
	r = start_profile(m, &hdr);
	if (r < 0)
		return r;
	icfg.profile = m->prof;
	r = image_new(&icfg, m->fetch, m->cache, &m->im);
	if (r < 0)
		return log_error_errno(r, "setting up the image: %m");
	if (!m->o.plain && !m->offline) {
		r = check_manifest(m, &img, &hdr);
		if (r < 0)
			return r;
	}
	ndirty = image_load_dirty(m->im);
	if (ndirty < 0)
		return log_error_errno((int)ndirty,
				       "reading the unsynced changes in %s: %m",
				       m->cache_path);
	if (ndirty > 0 && bound && bound != hdr.version) {
		r = image_adopt(m->im);
		if (r < 0)
			return log_error_errno(r,
					       "%s: comparing the unsynced "
					       "changes with version %" PRIu64
					       ": %m",
					       m->o.url, hdr.version);
		if (r == 1) {
			log_info("%s: version %" PRIu64 " already holds the "
				 "%" PRId64 " unsynced blocks of this copy "
				 "(a sync finished on the server before a "
				 "crash): adopted",
				 m->o.url, hdr.version, ndirty);
			ndirty = 0;
		}
	}
	if (ndirty > 0 && bound && bound != hdr.version && unfinished) {
		/* Not the advice below: these changes are not a fork to
		 * keep or drop, their sync landed; a later mount ends it. */
		log_error("%s: not mounted: the local copy holds %" PRId64
			  " changed blocks made on version %" PRIu64
			  " whose last sync landed on the server as a later "
			  "version but could not be finished (above); "
			  "mounting now would mix versions.  Nothing is "
			  "lost: the changes and the sync's record stay in "
			  "%s, and a later mount finishes the sync once that "
			  "cause is gone",
			  m->o.url, ndirty, bound, m->cache_path);
		return -ESTALE;
	}
	if (ndirty > 0 && bound && bound != hdr.version) {
		log_error("%s: the local copy holds %" PRId64
			  " changed blocks made on version %" PRIu64
			  ", but the server is now at version %" PRIu64
			  ": mounting would mix versions; the changes are "
			  "kept in %s: keep them as a new image with "
			  "`vmferry push --as NEW %s`, or drop them with "
			  "`vmferry discard %s`",
			  m->o.url, ndirty, bound, hdr.version, m->cache_path,
			  m->o.url, m->o.url);
		return -ESTALE;
	}
	r = bind_version(m, &hdr);
	if (r == 0)
		r = start_lifecycle(m, m->offline ? NULL : &img, &hdr);
	if (r < 0)
		return r;
	if (m->o.plain) {
		r = fill_plain(m);
		if (r < 0)
			return r;
	}
	r = image_load_manifest(m->im, 0, 1);
	if (r < 0) {
		log_error("%s: manifest: %s", m->o.url, remote_strerror(r));
		return r;
	}
	r = ctl_socket_path(m->ctl_path, sizeof(m->ctl_path));
	if (r < 0)
		return log_error_errno(r, "control socket path: %m");
	r = start_fuse(m);
	if (r < 0)
		return r;
	r = start_hydrate(m);
	if (r == 0)
		r = start_profile_upload(m, &hdr);
	if (r < 0)
		return r;
	if (!m->o.read_only && m->offline) {
		offline_lease(m);
	} else if (!m->o.read_only) {
		r = take_lease(m);
		if (r < 0)
			return r;
	}
	if (m->o.read_only && !m->offline && !m->o.plain)
		take_pin(m); /* also when take_lease() fell back */
	if (!m->o.read_only) {
		struct writeback_config wcfg = {
		    .name = m->url.name,
		    .version = hdr.version,
		    .interval_s = m->o.sync_interval_s,
		    .lease_id = m->lease.id,
		    .holder = m->holder,
		    .renew_s = lease_renew_interval(&m->lease),
		    .meta = m->cache,
		};

		r = writeback_start(&wcfg, m->im, m->cache, m->fetch, &m->wb);
		if (r < 0)
			return log_error_errno(r, "starting write-back: %m");
	}
	r = start_expiry(m);
	if (r < 0)
		return r;
	/* Last: the control thread reads what the lines above set. */
	r = ctl_start(m->ctl_path, ctl_handler, m, &m->ctl);
	if (r < 0)
		return log_error_errno(r, "control socket %s: %m", m->ctl_path);
	log_info("mounted %s version %" PRIu64 " (%" PRIu64
		 " bytes) on %s/%s%s",
		 m->url.name, m->version, hdr.image_size, m->o.mountpoint,
		 m->fctx.file_name,
		 m->o.plain ? ", read-only (a plain export)" : "");
	return 0;
}

/* Unmount syncs first; a failure keeps the changes in the cache. */
static void final_sync(struct mount *m)
{
	uint64_t version, blocks;
	char why[256];
	int r = writeback_sync(m->wb, &version, &blocks, why);

	if (r < 0)
		log_error("%s: the final sync failed: %s (%s); the changes are "
			  "kept in %s: mount again to retry",
			  m->url.name, why, strerror(-r), m->cache_path);
}

static void release_lease(struct mount *m)
{
	char id[VMF_LEASE_ID_HEX_LEN + 1], why[256];

	writeback_lease_id(m->wb, id);
	if (*id && lease_release(m->fetch, m->url.name, id, why) < 0)
		log_warn("%s: releasing the lease: %s", m->url.name, why);
}

/* The kept copy's record as it ends, for `vmferry list`. */
static void record_final(struct mount *m)
{
	struct lifecycle lc = m->lc;
	int r;

	fill_counts(m, &lc);
	if (lc.last_seen < now_wall())
		lc.last_seen = now_wall();
	r = lifecycle_write(m->cache_path, &lc, m->data_key, m->cache_id);
	if (r < 0)
		log_warn_errno(r, "recording the lifecycle of %s: %m",
			       m->cache_path);
}

/* Whether the copy goes at the end: expired, or ephemeral with nothing
 * left unsynced (an ephemeral copy whose final sync failed is kept, and
 * the user told). */
static bool copy_goes(struct mount *m)
{
	if (atomic_load(&m->expired))
		return true;
	if (!m->lc.ephemeral || !m->im)
		return false;
	if (!m->wb || image_clean(m->im))
		return true;
	log_error("%s: the ephemeral local copy in %s keeps its unsynced "
		  "changes, since they did not reach the server: mount again "
		  "to sync them, or drop them with `vmferry discard %s`",
		  m->o.url, m->cache_path, m->o.url);
	return false;
}

/* Teardown steps should each take well under a second; one that does
 * not is named in the log (unmounts seen to hang under load). */
static void slow_step(const char *what, uint64_t *t)
{
	uint64_t now = now_ns();

	if (now - *t > 2000000000ull)
		log_warn("unmount: %s took %.1f s", what,
			 (double)(now - *t) / 1e9);
	*t = now;
}

static void teardown(struct mount *m)
{
	int expired = atomic_load(&m->expired);
	uint64_t t = now_ns();
	bool goes;

	ctl_stop(m->ctl); /* started last, stopped first */
	/* Before the signal handlers go: its SIGTERM must find them. */
	mountwatch_stop(m->watch);
	m->watch = NULL;
	if (m->expiry) {
		expiry_get(m->expiry, &m->lc); /* the record as last kept */
		expiry_stop(m->expiry);
		m->expiry = NULL;
	}
	hydrate_stop(m->hydrate);
	slow_step("stopping hydration", &t);
	if (m->fuse) {
		fuse_remove_signal_handlers(fuse_get_session(m->fuse));
		fuse_unmount(m->fuse);
		fuse_destroy(m->fuse);
	}
	slow_step("unmounting FUSE", &t);
	/* Past its date the copy's changes still go up if they can; offline
	 * too long, the server cannot be reached anyway. */
	if (m->wb && !m->o.no_sync && expired != LIFECYCLE_OFFLINE_TOO_LONG)
		final_sync(m);
	slow_step("the final sync", &t);
	/* With changes left unsynced the lease is kept: another writer
	 * could otherwise commit on top and strand them. */
	if (m->wb && image_clean(m->im))
		release_lease(m);
	slow_step("releasing the lease", &t);
	writeback_stop(m->wb);
	slow_step("stopping write-back", &t);
	pin_keeper_stop(m->pin);
	slow_step("releasing the pin", &t);
	/* FUSE is gone: the recording is complete.  An expired copy's
	 * session tells the server nothing. */
	profile_upload_stop(m->pu, !expired);
	slow_step("the boot profile upload", &t);
	goes = copy_goes(m);
	if (!goes && m->im && m->cache && m->lc.url[0])
		record_final(m);
	image_free(m->im);
	slow_step("closing the image", &t);
	profile_free(m->prof); /* after the image: it notes reads into it */
	cache_free(m->cache);
	m->cache = NULL;
	fetch_free(m->fetch);
	slow_step("stopping the fetch engine", &t);
	plain_source_fini(&m->src);
	if (goes)
		destroy_copy(m);
	if (m->lock_fd >= 0)
		close(m->lock_fd); /* last: the copy is closed now */
	keys_user_fini(&m->user);
	crypto_cleanse(m->data_key, sizeof(m->data_key));
	if (m->token) {
		crypto_cleanse(m->token, strlen(m->token));
		free(m->token);
	}
}

/* The daemon holds the copy's data key for as long as it runs: a crash
 * must not write it into a core file. */
static void no_core_dumps(void)
{
	struct rlimit rl = {0, 0};

	if (setrlimit(RLIMIT_CORE, &rl) < 0)
		log_warn("cannot turn core dumps off: %m");
}

/* Memory the daemon keeps: block runs (up to 4 MiB), FUSE's 1 MiB read
 * buffers and LMDB's dirty pages come and go at the link's rate, on a
 * dozen threads.  Mapped and unmapped each time (a low mmap threshold),
 * every one costs page faults and zeroing: a third of the daemon's CPU
 * on a cold sequential read.  So they stay on the heap and are reused
 * (threshold and trim threshold above the largest), and fewer arenas
 * bound what the heaps hold.  Not fatal if refused. */
static void bound_malloc(void)
{
	(void)mallopt(M_MMAP_THRESHOLD, 32 << 20);
	(void)mallopt(M_TRIM_THRESHOLD, 32 << 20);
	(void)mallopt(M_ARENA_MAX, 4);
}

/* Which kind of server the URL names (plain.h says how they differ),
 * and what a plain export implies.  Returns 0, or 2 for a usage error. */
static int parse_url(struct mount *m)
{
	const char *why;

	if (!plain_url_is_plain(m->o.url)) {
		if (remote_parse_url(m->o.url, &m->url, &why) < 0) {
			log_error("bad URL \"%s\": %s (a plain export is "
				  "mounted by its descriptor's URL, "
				  ".../NAME/" VMF_EXPORT_DESCRIPTOR ")",
				  m->o.url, why);
			return 2;
		}
		if (m->o.has_manifest_pin) {
			log_error("--manifest-sha256 is for plain exports; "
				  "vmferry-server's TLS and token vouch for "
				  "its manifests");
			return 2;
		}
		return 0;
	}
	if (plain_parse_url(m->o.url, &m->url, &why) < 0) {
		log_error("bad URL \"%.*s\": %s", no_query_len(m->o.url),
			  m->o.url, why);
		return 2;
	}
	if (!plain_url_is_tls(m->o.url) && !m->o.has_manifest_pin &&
	    !m->o.insecure) {
		log_error("%s: without TLS nothing vouches for the manifest, "
			  "which every block is checked against: give its "
			  "SHA-256 with --manifest-sha256 HEX (vmferry export "
			  "prints it), or accept the risk with --insecure",
			  m->url.base);
		return 2;
	}
	m->o.plain = true;
	m->o.plain_url = m->o.url;
	m->o.url = m->url.base;
	m->o.read_only = true; /* said by the "mounted" line */
	return 0;
}

int fusefs_mount_main(int argc, char **argv)
{
	struct mount m;
	struct fuse_loop_config *lc;
	int r;

	memset(&m, 0, sizeof(m));
	no_core_dumps();
	bound_malloc();
	m.notify_fd = -1;
	m.lock_fd = -1;
	m.started_ns = now_ns();
	r = parse_opts(argc, argv, &m.o);
	if (r)
		return r;
	r = parse_url(&m);
	if (r)
		return r;
	if (check_mountpoint(&m) < 0 ||
	    (!m.o.plain && read_token(&m.o, &m.token) < 0) ||
	    load_user_key(&m) < 0) {
		teardown(&m);
		return 1;
	}
	if (!m.o.foreground && go_background(&m) < 0) {
		teardown(&m);
		return 1;
	}
	r = setup(&m);
	if (r < 0) {
		teardown(&m);
		return 1;
	}
	notify_mounted(&m);
	lc = fuse_loop_cfg_create();
	fuse_loop_cfg_set_clone_fd(lc, 0);
	fuse_loop_cfg_set_max_threads(lc, 16);
	r = fuse_loop_mt(m.fuse, lc);
	fuse_loop_cfg_destroy(lc);
	log_info("unmounting %s", m.o.mountpoint);
	teardown(&m);
	/* The watch's SIGTERM is the user's unmount, not a failure. */
	return r == 0 || atomic_load(&m.unmounted_elsewhere) ? 0 : 1;
}
