/* SPDX-License-Identifier: MIT */
/* `vmferry run NAME|URL --local|--remote`: options, finding the image,
 * and what the local and remote runs share (run.h). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "qemu.h"
#include "util.h"

#include "../fusefs/lifecycle.h"
#include "../fusefs/local.h"
#include "../fusefs/zpolicy.h"
#include "commands.h"
#include "run.h"

enum {
	OPT_LOCAL = 256,
	OPT_REMOTE,
	OPT_EPHEMERAL,
	OPT_KEEP,
	OPT_MEMORY,
	OPT_CPUS,
	OPT_DISPLAY,
	OPT_QEMU,
	OPT_ACCEL,
	OPT_SERVER,
	OPT_LOG,
	OPT_SHUTDOWN_TIMEOUT,
	OPT_COMPRESS,
	OPT_NO_COMPRESS,
};

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: vmferry run [OPTIONS] NAME|URL --local|--remote\n"
	    "\n"
	    "Run an image's VM here (--local) or on the server (--remote).  A\n"
	    "VM runs in one place at a time: the image's lease says where.\n"
	    "\n"
	    "--local takes the lease, mounts the image (as `vmferry mount`),\n"
	    "boots it in qemu-system-x86_64 with its serial console on this\n"
	    "terminal, and when the guest powers off syncs its changes as the\n"
	    "next version, releases the lease and unmounts (destroying an\n"
	    "ephemeral copy).  Ctrl-C presses the guest's power button, and\n"
	    "ends QEMU if the guest has not stopped after --shutdown-timeout.\n"
	    "A kept copy runs offline too; its changes go up later.\n"
	    "\n"
	    "--remote asks the server to run the VM (or finds it running\n"
	    "there) and attaches this terminal to its serial console: the\n"
	    "terminal is raw, so every key goes to the guest as typed (Ctrl-C\n"
	    "too), and Ctrl-] detaches, leaving the VM running; the same\n"
	    "command attaches again, `vmferry stop NAME` stops it.  With stdin\n"
	    "not a terminal, input goes as it is read and Ctrl-C (SIGINT)\n"
	    "detaches.\n"
	    "\n"
	    "NAME is an image name on --server (or $VMFERRY_SERVER), or of a\n"
	    "local copy; URL is https://HOST:PORT/NAME.\n"
	    "\n"
	    "      --local             run it on this machine\n"
	    "      --remote            run it on the server\n"
	    "      --server URL        https://HOST:PORT (default: "
	    "$VMFERRY_SERVER)\n"
	    "      --memory SIZE       guest memory: MiB, or 2G, 512M (default:\n"
	    "                          the image's, else 1024)\n"
	    "      --cpus N            virtual CPUs (default: the image's, else "
	    "1)\n"
	    "      --display TYPE      a QEMU display (gtk, sdl, vnc=...) rather\n"
	    "                          than the serial console alone\n"
	    "      --accel auto|kvm|tcg  (default auto: KVM when a probe boot\n"
	    "                          shows it works, else TCG; also\n"
	    "                          $VMFERRY_ACCEL)\n"
	    "      --qemu PATH         QEMU binary (default qemu-system-x86_64)\n"
	    "      --shutdown-timeout SECS  after Ctrl-C, how long the guest\n"
	    "                          has to power off (default 30)\n"
	    "      --ephemeral         destroy the local copy at the end\n"
	    "      --keep              keep it (default, unless the policy says\n"
	    "                          ephemeral)\n"
	    "      --log FILE          the mount's log\n"
	    "      --compress=auto|on|off, --no-compress  --local: ask the\n"
	    "                          server for zstd ranges (default auto),\n"
	    "                          as for `vmferry mount`\n"
	    "      --cache DIR, --key-file FILE, --passphrase,\n"
	    "      --passphrase-file FILE, --token-file FILE, --cacert FILE,\n"
	    "      --pin-sha256 B64, --insecure   as for `vmferry mount`\n");
}

/* --memory: MiB alone, or a size with a suffix. */
static int parse_memory(const char *s, uint64_t *ret)
{
	uint64_t v;
	int r = parse_u64(s, &v);

	if (r < 0) {
		r = parse_size(s, &v);
		if (r < 0)
			return r;
		v /= 1024 * 1024;
	}
	if (v < 16 || v > QEMU_MAX_MEMORY)
		return -ERANGE;
	*ret = v;
	return 0;
}

static int run_opt(int c, const char *arg, void *opaque)
{
	struct run_opts *ro = opaque;
	enum zpolicy_mode mode;
	uint64_t v;
	int r = 0;

	switch (c) {
	case OPT_LOCAL:
		ro->local = true;
		return 0;
	case OPT_REMOTE:
		ro->remote = true;
		return 0;
	case OPT_EPHEMERAL:
		ro->ephemeral = true;
		return 0;
	case OPT_KEEP:
		ro->keep = true;
		return 0;
	case OPT_DISPLAY:
		ro->display = arg;
		return 0;
	case OPT_QEMU:
		ro->qemu = arg;
		return 0;
	case OPT_SERVER:
		ro->server = arg;
		return 0;
	case OPT_LOG:
		ro->log = arg;
		return 0;
	case OPT_COMPRESS:
		if (zpolicy_parse(arg, &mode) < 0) {
			log_error("--compress: invalid value \"%s\" (auto, on "
				  "or off)",
				  arg);
			return 2;
		}
		ro->compress = zpolicy_name(mode);
		return 0;
	case OPT_NO_COMPRESS:
		ro->compress = zpolicy_name(ZPOLICY_OFF);
		return 0;
	case OPT_ACCEL:
		if (strcmp(arg, "auto") != 0 && strcmp(arg, "kvm") != 0 &&
		    strcmp(arg, "tcg") != 0) {
			log_error("--accel: want auto, kvm or tcg, not \"%s\"",
				  arg);
			return 2;
		}
		ro->accel = arg;
		return 0;
	case OPT_MEMORY:
		r = parse_memory(arg, &ro->memory_mib);
		if (r < 0) {
			log_error(
			    "--memory: invalid value \"%s\" (want MiB, or "
			    "a size such as 512M or 2G; 16M to 1T)",
			    arg);
			return 2;
		}
		return 0;
	case OPT_CPUS:
		if (parse_u64(arg, &v) < 0 || v == 0 || v > QEMU_MAX_CPUS) {
			log_error("--cpus: invalid value \"%s\" (want 1 to %d)",
				  arg, QEMU_MAX_CPUS);
			return 2;
		}
		ro->cpus = (unsigned)v;
		return 0;
	case OPT_SHUTDOWN_TIMEOUT:
		if (parse_duration(arg, &ro->shutdown_timeout_s) < 0 ||
		    ro->shutdown_timeout_s > 3600) {
			log_error("--shutdown-timeout: invalid value \"%s\"",
				  arg);
			return 2;
		}
		return 0;
	default:
		return 2;
	}
}

struct find_copy {
	const char *name;
	char url[1024];
	unsigned n;
};

static int match_copy(const char *dir, void *opaque)
{
	struct find_copy *fc = opaque;
	struct lifecycle lc;
	struct remote_url u;
	const char *why;

	if (lifecycle_read(dir, &lc) < 0 ||
	    remote_parse_url(lc.url, &u, &why) < 0 ||
	    strcmp(u.name, fc->name) != 0)
		return 0;
	if (fc->n++ == 0)
		snprintf(fc->url, sizeof(fc->url), "%s", lc.url);
	return 0;
}

/* NAME or URL -> ro->url and ro->u. */
int run_resolve(struct run_opts *ro, const char *arg, char *buf, size_t len)
{
	const char *server = ro->server ? ro->server : getenv("VMFERRY_SERVER");
	struct find_copy fc = {.name = arg};
	char base[4096];
	const char *why;

	if (strstr(arg, "://")) {
		snprintf(buf, len, "%s", arg);
	} else if (!image_name_valid(arg)) {
		log_error("\"%s\" is not an image name or URL", arg);
		return 2;
	} else if (server && *server) {
		size_t n = strlen(server);

		snprintf(buf, len, "%.*s/%s",
			 (int)(n && server[n - 1] == '/' ? n - 1 : n), server,
			 arg);
	} else {
		if (local_cache_base(ro->o.cache, base, sizeof(base)) == 0)
			(void)local_each_copy(base, match_copy, &fc);
		if (fc.n != 1) {
			log_error(
			    "%s: %s: give its URL (https://HOST:PORT/%s), "
			    "--server URL or $VMFERRY_SERVER",
			    arg,
			    fc.n ? "more than one local copy has this "
				   "name"
				 : "no local copy has this name",
			    arg);
			return 2;
		}
		snprintf(buf, len, "%s", fc.url);
	}
	if (remote_parse_url(buf, &ro->u, &why) < 0) {
		log_error("bad URL \"%s\": %s", buf, why);
		return 2;
	}
	ro->url = buf;
	return 0;
}

int run_connect(struct run_opts *ro, struct fetch **ret, char **ret_token)
{
	return tool_connect(&ro->o, ro->u.base, ret, ret_token);
}

void run_describe_lease(const struct remote_image *img, const char *name,
			char *buf, size_t len)
{
	char since[32], until[32];

	format_utc(img->lease_since, since, sizeof(since));
	format_utc(img->lease_expires, until, sizeof(until));
	snprintf(buf, len, "image %s is leased to %s (%s) since %s until %s",
		 name, img->lease_holder, img->lease_where, since, until);
}

int cmd_run(int argc, char **argv)
{
	static const struct option own[] = {
	    {"local", no_argument, NULL, OPT_LOCAL},
	    {"remote", no_argument, NULL, OPT_REMOTE},
	    {"ephemeral", no_argument, NULL, OPT_EPHEMERAL},
	    {"keep", no_argument, NULL, OPT_KEEP},
	    {"memory", required_argument, NULL, OPT_MEMORY},
	    {"cpus", required_argument, NULL, OPT_CPUS},
	    {"display", required_argument, NULL, OPT_DISPLAY},
	    {"qemu", required_argument, NULL, OPT_QEMU},
	    {"accel", required_argument, NULL, OPT_ACCEL},
	    {"server", required_argument, NULL, OPT_SERVER},
	    {"log", required_argument, NULL, OPT_LOG},
	    {"shutdown-timeout", required_argument, NULL, OPT_SHUTDOWN_TIMEOUT},
	    {"compress", required_argument, NULL, OPT_COMPRESS},
	    {"no-compress", no_argument, NULL, OPT_NO_COMPRESS},
	    {NULL, 0, NULL, 0},
	};
	struct run_opts ro = {
	    .o = {.want = TOOL_OPT_CACHE | TOOL_OPT_KEYS | TOOL_OPT_SERVER},
	    .qemu = QEMU_DEFAULT_BINARY,
	    .accel = "auto",
	    .shutdown_timeout_s = 30,
	};
	char url[1100];
	int r;

	r = tool_parse(argc, argv, &ro.o, own, run_opt, &ro, usage);
	if (r >= 0)
		return r;
	if (argc - optind != 1) {
		usage(stderr);
		return 2;
	}
	if (ro.local == ro.remote) {
		log_error("say where the VM runs: --local (here) or --remote "
			  "(on the server)");
		return 2;
	}
	if (ro.ephemeral && ro.keep) {
		log_error("--ephemeral and --keep: choose one");
		return 2;
	}
	r = run_resolve(&ro, argv[optind], url, sizeof(url));
	if (r)
		return r;
	return ro.local ? run_local(&ro) : run_remote(&ro);
}
