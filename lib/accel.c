/* SPDX-License-Identifier: MIT */
/* The accelerator probe (see accel.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "accel.h"
#include "cleanup.h"
#include "io.h"
#include "util.h"

#define PROBE_TIMEOUT_NS (15ull * 1000000000ull)
/* isa-debug-exit ends QEMU with (value << 1) | 1. */
#define PROBE_VALUE  0x31
#define PROBE_STATUS ((PROBE_VALUE << 1) | 1)

const char *accel_name(enum accel a)
{
	return a == ACCEL_KVM ? "kvm" : "tcg";
}

int accel_parse(const char *s, enum accel *ret)
{
	if (strcmp(s, "tcg") == 0) {
		*ret = ACCEL_TCG;
		return 0;
	}
	if (strcmp(s, "kvm") == 0) {
		*ret = ACCEL_KVM;
		return 0;
	}
	if (strcmp(s, "auto") == 0)
		return 1;
	return -EINVAL;
}

/* The cache file's path, keyed by this boot; -ENOENT without a boot id. */
static int cache_path(char *buf, size_t len)
{
	char id[64] = "", clean[64];
	const char *tmp = getenv("TMPDIR");
	size_t n = 0;
	ssize_t got;
	_cleanup_close_ int fd =
	    open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -ENOENT;
	got = read_up_to(fd, id, sizeof(id) - 1);
	if (got <= 0)
		return -ENOENT;
	for (ssize_t i = 0; i < got && n < sizeof(clean) - 1; i++)
		if ((id[i] >= '0' && id[i] <= '9') ||
		    (id[i] >= 'a' && id[i] <= 'f') || id[i] == '-')
			clean[n++] = id[i];
	clean[n] = '\0';
	if (n == 0)
		return -ENOENT;
	snprintf(buf, len, "%s/vmferry-accel.%u.%s", tmp && *tmp ? tmp : "/tmp",
		 (unsigned)getuid(), clean);
	return 0;
}

/* The cached answer: 0 and *ret, or -ENOENT. */
static int read_cached(const char *path, enum accel *ret)
{
	char buf[16] = "";
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -ENOENT;
	n = read_up_to(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return -ENOENT;
	buf[n] = '\0';
	strip_trailing_space(buf);
	return accel_parse(buf, ret) == 0 ? 0 : -ENOENT;
}

/* The probe guest: one boot sector. */
static int write_probe_disk(char *path, size_t len)
{
	static const unsigned char code[] = {
	    0xcd, 0x12,	       /* int 0x12: a BIOS call, back by iret */
	    0xb0, PROBE_VALUE, /* mov al, PROBE_VALUE */
	    0xe6, 0xf4,	       /* out 0xf4, al: isa-debug-exit */
	    0xf4,	       /* hlt */
	    0xeb, 0xfe,	       /* jmp $ */
	};
	unsigned char sector[512] = {0};
	const char *tmp = getenv("TMPDIR");
	_cleanup_close_ int fd = -1;
	int r;

	snprintf(path, len, "%s/vmferry-probe.XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	fd = mkstemp(path);
	if (fd < 0)
		return -errno;
	memcpy(sector, code, sizeof(code));
	sector[510] = 0x55;
	sector[511] = 0xaa;
	r = full_write(fd, sector, sizeof(sector));
	if (r < 0)
		unlink(path);
	return r;
}

/* Boot the probe under KVM; true if it reached the exit port in time. */
static bool probe_kvm(const char *qemu)
{
	char disk[4096], drive[4200];
	uint64_t deadline;
	pid_t pid, w;
	int st = 0;

	if (write_probe_disk(disk, sizeof(disk)) < 0)
		return false;
	snprintf(drive, sizeof(drive), "file=%s,format=raw,if=ide", disk);
	pid = fork();
	if (pid < 0) {
		unlink(disk);
		return false;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
			dup2(null, STDERR_FILENO);
		}
		execl(qemu, qemu, "-nodefaults", "-no-user-config", "-display",
		      "none", "-accel", "kvm", "-cpu", "host", "-m", "16",
		      "-drive", drive, "-device",
		      "isa-debug-exit,iobase=0xf4,iosize=0x04", "-no-reboot",
		      "-serial", "none", "-monitor", "none", (char *)NULL);
		_exit(127);
	}
	deadline = now_ns() + PROBE_TIMEOUT_NS;
	for (;;) {
		w = waitpid(pid, &st, WNOHANG);
		if (w == pid || (w < 0 && errno != EINTR))
			break;
		if (now_ns() > deadline) {
			kill(pid, SIGKILL); /* our own child */
			while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
				;
			st = -1;
			break;
		}
		nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
	}
	unlink(disk);
	return st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == PROBE_STATUS;
}

int accel_pick(const char *qemu, enum accel *ret, char *ret_why, size_t len)
{
	const char *env = getenv("VMFERRY_ACCEL");
	char path[4096], lock[4200];
	_cleanup_close_ int lfd = -1;
	enum accel a;
	bool ok;

	snprintf(ret_why, len, "%s", "");
	if (env && *env) {
		if (accel_parse(env, &a) != 0)
			return -EINVAL;
		*ret = a;
		return 0;
	}
	*ret = ACCEL_TCG;
	if (access("/dev/kvm", R_OK | W_OK) < 0) {
		snprintf(ret_why, len, "no usable /dev/kvm");
		return 0;
	}
	if (cache_path(path, sizeof(path)) < 0) {
		snprintf(ret_why, len, "cannot tell this boot's id");
		return 0;
	}
	if (read_cached(path, &a) == 0)
		goto answer;
	/* Parallel runs probe once: the others wait for the answer. */
	snprintf(lock, sizeof(lock), "%s.lock", path);
	lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lfd >= 0)
		while (flock(lfd, LOCK_EX) < 0 && errno == EINTR)
			;
	if (read_cached(path, &a) == 0)
		goto answer;
	ok = probe_kvm(qemu);
	a = ok ? ACCEL_KVM : ACCEL_TCG;
	/* Not cached, it is asked again next time: no harm. */
	(void)write_file_atomic(path, ok ? "kvm\n" : "tcg\n", 4, 0644);
answer:
	*ret = a;
	if (a == ACCEL_TCG)
		snprintf(ret_why, len,
			 "/dev/kvm is there but a probe boot under KVM failed");
	return 0;
}
