/* SPDX-License-Identifier: MIT */
/* `vmferry run --local`: the VM on this machine.
 *
 * The image is mounted by a `vmferry mount` child (this same binary,
 * daemonised as usual: it holds the lease, the cache and the
 * write-back), QEMU boots the mounted file with its serial console on
 * this terminal, and when QEMU ends the mount is synced and unmounted
 * (which releases the lease and destroys an ephemeral copy).  SIGINT,
 * SIGTERM and SIGHUP only set a flag here: the guest is then asked to
 * power off, and QEMU told to quit if it has not after
 * --shutdown-timeout.  QEMU has SIGINT blocked (qemu.h), so Ctrl-C on
 * the terminal reaches only this process.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "accel.h"
#include "cleanup.h"
#include "log.h"
#include "qemu.h"

#include "../fusefs/crypto.h"
#include "../fusefs/ctl.h"
#include "../fusefs/fetch.h"
#include "../fusefs/lease.h"
#include "mountctl.h"
#include "run.h"

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
	stop_signal = sig;
}

static void catch_stop_signals(void)
{
	struct sigaction sa = {.sa_handler = on_stop};

	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: the wait for QEMU returns EINTR. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* The image's metadata, for its VM settings and whether it runs
 * elsewhere.  Offline is fine (*ret_offline): the mount decides whether
 * a kept copy can start.  Returns 0 or 1 (said why). */
static int look_up(struct run_opts *ro, struct remote_image *img,
		   bool *ret_offline)
{
	struct fetch *f = NULL;
	char *token = NULL, why[256] = "", what[512], holder[256];
	int r;

	*ret_offline = false;
	r = run_connect(ro, &f, &token);
	if (r == -ENOKEY || r == -EINVAL)
		return 1; /* said by tool_read_token */
	if (r < 0)
		return 1;
	r = remote_get_image(f, ro->u.name, img, why);
	fetch_free(f);
	crypto_cleanse(token, strlen(token));
	free(token);
	if (r == -ENOENT) {
		log_error("%s: no image \"%s\" on %s", ro->url, ro->u.name,
			  ro->u.base);
		return 1;
	}
	if (r == -ECONNREFUSED || r == -EHOSTUNREACH || r == -ETIMEDOUT ||
	    r == -ENETUNREACH || r == -ECONNRESET || r == -EIO) {
		log_warn("%s: %s: running from the local copy, offline",
			 ro->url, remote_strerror(r));
		*ret_offline = true;
		return 0;
	}
	if (r < 0) {
		log_error("%s: %s (%s)", ro->url, remote_strerror(r), why);
		return 1;
	}
	if (img->leased &&
	    strcmp(img->lease_where, VMF_LEASE_WHERE_REMOTE) == 0) {
		run_describe_lease(img, ro->u.name, what, sizeof(what));
		log_error("%s: cannot run it locally: %s: it runs on the "
			  "server; stop it with `vmferry stop %s`, or see its "
			  "console with `vmferry run %s --remote`",
			  ro->url, what, ro->url, ro->url);
		return 1;
	}
	lease_holder_name(holder, sizeof(holder));
	/* Another client's (the same user on the same host may be this
	 * copy's own lease, left by a crash: the mount renews it). */
	if (img->leased && strcmp(img->lease_holder, holder) != 0) {
		run_describe_lease(img, ro->u.name, what, sizeof(what));
		log_error("%s: cannot run it locally: %s: it runs on another "
			  "machine; stop it there, or ask the administrator "
			  "(vmferry-server lease break)",
			  ro->url, what);
		return 1;
	}
	return 0;
}

/* `vmferry mount URL MP ...` in the background; 0 once mounted. */
static int mount_image(struct run_opts *ro, const char *mp)
{
	const char *argv[32];
	size_t n = 0;
	pid_t pid;
	int st;

	argv[n++] = "vmferry";
	argv[n++] = "mount";
#define ARG2(flag, val)                     \
	do {                                \
		if (val) {                  \
			argv[n++] = (flag); \
			argv[n++] = (val);  \
		}                           \
	} while (0)
	ARG2("--cache", ro->o.cache);
	ARG2("--key-file", ro->o.keys.key_file);
	ARG2("--passphrase-file", ro->o.keys.passphrase_file);
	ARG2("--token-file", ro->o.token_file);
	ARG2("--cacert", ro->o.cacert);
	ARG2("--pin-sha256", ro->o.pin);
	ARG2("--log", ro->log);
	ARG2("--compress", ro->compress);
#undef ARG2
	if (ro->o.keys.passphrase)
		argv[n++] = "--passphrase";
	if (ro->o.insecure)
		argv[n++] = "--insecure";
	if (ro->ephemeral)
		argv[n++] = "--ephemeral";
	if (ro->keep)
		argv[n++] = "--keep";
	argv[n++] = "--";
	argv[n++] = ro->url;
	argv[n++] = mp;
	argv[n] = NULL;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execv("/proc/self/exe", (char **)argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

/* Boot, wait, shut down on a signal.  Returns QEMU's wait status, or
 * -errno if it could not start. */
static int boot(struct run_opts *ro, const struct remote_image *img,
		const char *mp, const char *disk, const char *qmp)
{
	struct qemu_config cfg = {
	    .disk = disk,
	    .memory_mib = ro->memory_mib ? ro->memory_mib : img->vm_memory_mib,
	    .cpus = ro->cpus ? ro->cpus : img->vm_cpus,
	    .display = ro->display,
	    .qmp_path = qmp,
	    .in_fd = -1,
	    .out_fd = -1,
	    .err_fd = -1,
	    .network = true,
	};
	char binary[4096], why[256];
	struct qemu *q = NULL;
	int r, st = 0;

	r = qemu_find(ro->qemu, binary, sizeof(binary));
	if (r < 0)
		return r;
	cfg.binary = binary;
	if (mountctl_read_only(mp, &cfg.snapshot) == 0 && cfg.snapshot)
		log_warn("%s: mounted read-only (the token may not write it): "
			 "the guest's changes are dropped when it stops",
			 ro->u.name);
	if (strcmp(ro->accel, "auto") != 0) {
		(void)accel_parse(ro->accel, &cfg.accel); /* checked */
	} else if (accel_pick(binary, &cfg.accel, why, sizeof(why)) < 0) {
		log_error("$VMFERRY_ACCEL: want kvm or tcg");
		return -EINVAL;
	} else if (*why) {
		log_info("notice: using TCG, QEMU's emulator (%s): the guest "
			 "runs slower than with KVM",
			 why);
	}
	if (!cfg.memory_mib)
		cfg.memory_mib = QEMU_DEFAULT_MEMORY;
	if (!cfg.cpus)
		cfg.cpus = QEMU_DEFAULT_CPUS;
	r = qemu_start(&cfg, &q);
	if (r < 0)
		return log_error_errno(r, "starting %s: %m", binary);
	log_info("%s: running with %s, %" PRIu64 " MiB, %u CPU%s (Ctrl-C "
		 "powers it off)",
		 ro->u.name, accel_name(cfg.accel), cfg.memory_mib, cfg.cpus,
		 cfg.cpus == 1 ? "" : "s");
	for (;;) {
		/* Bounded: a signal that lands between qemu_wait()'s check
		 * and its poll() would otherwise be seen only when QEMU
		 * ends by itself. */
		r = qemu_wait(q, 250, &st);
		if (r == 0)
			break;
		if (stop_signal) {
			log_info("%s: signal %d: powering the guest off (QEMU "
				 "quits in %" PRIu64 " s otherwise)",
				 ro->u.name, (int)stop_signal,
				 ro->shutdown_timeout_s);
			qemu_shutdown(q, (int)ro->shutdown_timeout_s * 1000,
				      &st);
			break;
		}
	}
	qemu_free(q);
	return st;
}

/* boot(), giving the terminal back as it was: QEMU sets it raw for the
 * console and restores it, unless it was killed. */
static int boot_on_terminal(struct run_opts *ro, const struct remote_image *img,
			    const char *mp, const char *disk, const char *qmp)
{
	struct termios t;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &t) == 0;
	int st = boot(ro, img, mp, disk, qmp);

	if (tty)
		(void)tcsetattr(STDIN_FILENO, TCSANOW, &t); /* best effort */
	return st;
}

/* Sync, then unmount (lease released, an ephemeral copy destroyed).
 * Returns 0 if the changes are on the server, or kept in the copy
 * because the run is offline. */
static int finish(struct run_opts *ro, const char *mp, bool offline)
{
	uint64_t version = 0;
	char msg[512];
	int r, st = 0;

	r = mountctl_sync(mp, &version, msg, sizeof(msg));
	if (r == 0) {
		log_info("%s: synced: %s", ro->u.name, msg);
	} else if (strcmp(msg, "mounted read-only") == 0) {
		r = 0; /* nothing to send */
	} else if (offline && r != -ESTALE) {
		log_warn("%s: sync failed (%s): offline, the changes stay in "
			 "the local copy and go up at the next run or mount",
			 ro->u.name, msg);
	} else {
		log_error("%s: sync failed: %s; the changes stay in the local "
			  "copy and go up at the next run or mount",
			  ro->u.name, msg);
		st = 1;
	}
	r = mountctl_umount(mp);
	if (r < 0) {
		log_error_errno(r, "unmounting %s: %m", mp);
		return 1;
	}
	return st;
}

int run_local(struct run_opts *ro)
{
	struct remote_image img = {0};
	char dir[256], mp[512], disk[700], qmp[600], binary[4096], desc[64];
	bool offline;
	int r, st, status;

	if (qemu_find(ro->qemu, binary, sizeof(binary)) < 0) {
		log_error("%s not found: install QEMU (Debian: apt-get install "
			  "qemu-system-x86) or give --qemu PATH",
			  ro->qemu);
		return 1;
	}
	r = look_up(ro, &img, &offline);
	if (r)
		return r;
	r = ctl_runtime_dir(dir, sizeof(dir));
	if (r < 0)
		return log_error_errno(r, "runtime directory: %m"), 1;
	snprintf(mp, sizeof(mp), "%s/run-%s.XXXXXX", dir, ro->u.name);
	if (!mkdtemp(mp))
		return log_error_errno(-errno, "mkdtemp %s: %m", mp), 1;
	snprintf(disk, sizeof(disk), "%s/%s.img", mp, ro->u.name);
	snprintf(qmp, sizeof(qmp), "%s.qmp", mp);
	catch_stop_signals();
	if (mount_image(ro, mp) < 0) {
		/* Its parent said why; a daemon that got as far as mounting
		 * (a Ctrl-C cut the parent short) is unmounted. */
		(void)mountctl_umount(mp);
		rmdir(mp);
		return 1;
	}
	if (stop_signal) {
		log_info("%s: signal %d before the boot: not started",
			 ro->u.name, (int)stop_signal);
		st = 0;
	} else {
		st = boot_on_terminal(ro, &img, mp, disk, qmp);
	}
	status = 0;
	if (st < 0) {
		log_error_errno(st, "%s: QEMU: %m", ro->u.name);
		status = 1;
	} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		qemu_describe_status(st, desc, sizeof(desc));
		log_error("%s: QEMU %s", ro->u.name, desc);
		status = 1;
	} else {
		log_info("%s: the guest stopped", ro->u.name);
	}
	if (finish(ro, mp, offline) != 0)
		status = 1;
	rmdir(mp);
	return status;
}
