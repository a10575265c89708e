/* SPDX-License-Identifier: MIT */
/* The QEMU launcher and its QMP client (see qemu.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cleanup.h"
#include "io.h"
#include "qemu.h"
#include "util.h"

#define QMP_TIMEOUT_S 5
#define ARGV_MAX      48

struct qemu {
	pid_t pid;     /* 0 once reaped */
	int pidfd;     /* -1 if the kernel has no pidfd_open */
	int status;    /* wait status, once reaped */
	char qmp[108]; /* sun_path */
};

int qemu_find(const char *binary, char *buf, size_t len)
{
	const char *path = getenv("PATH");
	_cleanup_free_ char *copy = NULL;
	char *dir, *save = NULL;

	if (strchr(binary, '/')) {
		if (access(binary, X_OK) < 0)
			return -ENOENT;
		snprintf(buf, len, "%s", binary);
		return 0;
	}
	copy = strdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
	if (!copy)
		return -ENOMEM;
	for (dir = strtok_r(copy, ":", &save); dir;
	     dir = strtok_r(NULL, ":", &save)) {
		struct stat st;
		int n = snprintf(buf, len, "%s/%s", *dir ? dir : ".", binary);

		if (n < 0 || (size_t)n >= len)
			continue;
		if (stat(buf, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(buf, X_OK) == 0)
			return 0;
	}
	return -ENOENT;
}

pid_t qemu_pid(const struct qemu *q)
{
	return q->pid;
}

/* "file=PATH,..." with PATH's commas doubled, as QEMU's options want. */
static char *drive_option(const char *disk, bool snapshot)
{
	size_t n = strlen(disk), o = 0;
	const char *tail =
	    snapshot ? ",format=raw,if=virtio,cache=writeback,snapshot=on"
		     : ",format=raw,if=virtio,cache=writeback,discard=unmap";
	char *s = malloc(5 + 2 * n + strlen(tail) + 1);

	if (!s)
		return NULL;
	memcpy(s, "file=", 5);
	o = 5;
	for (size_t i = 0; i < n; i++) {
		s[o++] = disk[i];
		if (disk[i] == ',')
			s[o++] = ',';
	}
	memcpy(s + o, tail, strlen(tail) + 1);
	return s;
}

/* In the child: set up fds and signals, exec.  Never returns. */
static void exec_child(const struct qemu_config *cfg, char **argv)
{
	sigset_t set;

	if (cfg->new_session)
		(void)setsid(); /* fails only if already a leader */
	if (cfg->in_fd >= 0)
		dup2(cfg->in_fd, STDIN_FILENO);
	if (cfg->out_fd >= 0)
		dup2(cfg->out_fd, STDOUT_FILENO);
	if (cfg->err_fd >= 0)
		dup2(cfg->err_fd, STDERR_FILENO);
	/* Nothing of the caller's (sockets, the cache) leaks into QEMU. */
	syscall(SYS_close_range, 3u, ~0u, 0u);
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_SETMASK, &set, NULL);
	execv(cfg->binary, argv);
	_exit(127);
}

int qemu_start(const struct qemu_config *cfg, struct qemu **ret)
{
	_cleanup_free_ char *drive = drive_option(cfg->disk, cfg->snapshot);
	char mem[32], smp[32], qmp[160], vnc[160];
	const char *argv[ARGV_MAX];
	struct qemu *q;
	size_t n = 0;
	pid_t pid;

	if (!drive)
		return -ENOMEM;
	if (strlen(cfg->qmp_path) >= sizeof(q->qmp))
		return -ENAMETOOLONG;
	snprintf(mem, sizeof(mem), "%llu",
		 (unsigned long long)(cfg->memory_mib ? cfg->memory_mib
						      : QEMU_DEFAULT_MEMORY));
	snprintf(smp, sizeof(smp), "%u",
		 cfg->cpus ? cfg->cpus : QEMU_DEFAULT_CPUS);
	snprintf(qmp, sizeof(qmp), "unix:%s,server=on,wait=off", cfg->qmp_path);
	if (cfg->vnc_path && (strlen(cfg->vnc_path) >= sizeof(q->qmp) ||
			      strchr(cfg->vnc_path, ',')))
		return -ENAMETOOLONG; /* a sun_path; ',' would split it */
	if (cfg->vnc_path)
		snprintf(vnc, sizeof(vnc), "unix:%s", cfg->vnc_path);
	argv[n++] = cfg->binary;
	argv[n++] = "-nodefaults";
	argv[n++] = "-no-user-config";
	if (cfg->accel == ACCEL_KVM) {
		argv[n++] = "-accel";
		argv[n++] = "kvm";
		argv[n++] = "-cpu";
		argv[n++] = "host";
	} else {
		argv[n++] = "-accel";
		argv[n++] = "tcg";
	}
	argv[n++] = "-m";
	argv[n++] = mem;
	argv[n++] = "-smp";
	argv[n++] = smp;
	argv[n++] = "-drive";
	argv[n++] = drive;
	if (cfg->display) {
		argv[n++] = "-display";
		argv[n++] = cfg->display;
		argv[n++] = "-vga";
		argv[n++] = "std";
	} else {
		argv[n++] = "-display";
		argv[n++] = "none";
	}
	if (cfg->vnc_path) {
		if (!cfg->display) {
			argv[n++] = "-vga";
			argv[n++] = "std";
		}
		argv[n++] = "-vnc";
		argv[n++] = vnc;
	}
	/* signal=on keeps ISIG on a terminal: Ctrl-C raises SIGINT, which
	 * QEMU has blocked and the caller handles. */
	argv[n++] = "-chardev";
	argv[n++] = "stdio,id=console,signal=on";
	argv[n++] = "-serial";
	argv[n++] = "chardev:console";
	argv[n++] = "-monitor";
	argv[n++] = "none";
	argv[n++] = "-qmp";
	argv[n++] = qmp;
	if (cfg->network) {
		argv[n++] = "-nic";
		argv[n++] = "user,model=virtio-net-pci";
	}
	argv[n] = NULL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	snprintf(q->qmp, sizeof(q->qmp), "%s", cfg->qmp_path);
	unlink(cfg->qmp_path); /* a stale socket of a dead run */
	pid = fork();
	if (pid < 0) {
		free(q);
		return -errno;
	}
	if (pid == 0)
		exec_child(cfg, (char **)argv);
	q->pid = pid;
	q->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	*ret = q;
	return 0;
}

static int reap(struct qemu *q, int *ret_status)
{
	int st;
	pid_t w = waitpid(q->pid, &st, WNOHANG);

	if (w < 0 && errno == EINTR)
		return -EINTR;
	if (w == 0)
		return -EAGAIN;
	if (w < 0)
		st = 0; /* reaped elsewhere: nothing to tell */
	q->status = st;
	q->pid = 0;
	*ret_status = st;
	return 0;
}

int qemu_wait(struct qemu *q, int timeout_ms, int *ret_status)
{
	uint64_t deadline = timeout_ms < 0
				? UINT64_MAX
				: now_ns() + (uint64_t)timeout_ms * 1000000ull;

	if (!q->pid) {
		*ret_status = q->status;
		return 0;
	}
	for (;;) {
		int r = reap(q, ret_status), step;
		uint64_t now;

		if (r != -EAGAIN)
			return r;
		now = now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		step = deadline == UINT64_MAX
			   ? -1
			   : (int)((deadline - now) / 1000000 + 1);
		if (q->pidfd >= 0) {
			struct pollfd p = {.fd = q->pidfd, .events = POLLIN};

			if (poll(&p, 1, step) < 0 && errno == EINTR)
				return -EINTR;
		} else {
			struct timespec ts = {0, 50 * 1000 * 1000};

			if (nanosleep(&ts, NULL) < 0)
				return -EINTR;
		}
	}
}

/* One JSON line from QMP into a new object; skips events. */
static int qmp_reply(FILE *f, json_t **ret)
{
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;

	for (;;) {
		json_t *o;

		if (getline(&line, &cap, f) < 0)
			return -EPROTO;
		o = json_loads(line, 0, NULL);
		if (!o)
			return -EPROTO;
		if (json_object_get(o, "event")) {
			json_decref(o);
			continue;
		}
		*ret = o;
		return 0;
	}
}

/* Connect, negotiate, run one command; 0 if it answered "return". */
static int qmp_command(struct qemu *q, const char *cmd)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {QMP_TIMEOUT_S, 0};
	_cleanup_fclose_ FILE *f = NULL;
	json_t *o = NULL;
	int fd, r;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", q->qmp);
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	f = fdopen(fd, "r+");
	if (!f) {
		r = -errno;
		close(fd);
		return r;
	}
	/* The greeting, then capabilities negotiation, then the command. */
	r = qmp_reply(f, &o);
	json_decref(o);
	o = NULL;
	if (r == 0 && fprintf(f, "{\"execute\":\"qmp_capabilities\"}\n") < 0)
		r = -EIO;
	if (r == 0 && fflush(f) != 0)
		r = -EIO;
	if (r == 0)
		r = qmp_reply(f, &o);
	if (r == 0 && !json_object_get(o, "return"))
		r = -EPROTO;
	json_decref(o);
	o = NULL;
	if (r == 0 &&
	    (fprintf(f, "{\"execute\":\"%s\"}\n", cmd) < 0 || fflush(f) != 0))
		r = -EIO;
	if (r == 0)
		r = qmp_reply(f, &o);
	/* "quit" may close the socket before its answer arrives. */
	if (r == -EPROTO && strcmp(cmd, "quit") == 0)
		r = 0;
	else if (r == 0 && !json_object_get(o, "return"))
		r = -EPROTO;
	json_decref(o);
	return r;
}

int qemu_powerdown(struct qemu *q)
{
	return qmp_command(q, "system_powerdown");
}

int qemu_quit(struct qemu *q)
{
	return qmp_command(q, "quit");
}

void qemu_shutdown(struct qemu *q, int grace_ms, int *ret_status)
{
	int r;

	*ret_status = 0;
	if (!q->pid) {
		*ret_status = q->status;
		return;
	}
	if (qemu_powerdown(q) == 0) {
		do
			r = qemu_wait(q, grace_ms, ret_status);
		while (r == -EINTR);
		if (r == 0)
			return;
	}
	if (qemu_quit(q) == 0) {
		do
			r = qemu_wait(q, 10000, ret_status);
		while (r == -EINTR);
		if (r == 0)
			return;
	}
	kill(q->pid, SIGKILL); /* our own child, by its pid */
	do
		r = qemu_wait(q, -1, ret_status);
	while (r == -EINTR);
}

void qemu_free(struct qemu *q)
{
	int st;

	if (!q)
		return;
	if (q->pid) {
		kill(q->pid, SIGKILL);
		while (qemu_wait(q, -1, &st) == -EINTR)
			;
	}
	if (q->pidfd >= 0)
		close(q->pidfd);
	unlink(q->qmp);
	free(q);
}

void qemu_describe_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d",
			 WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, len, "ended (status 0x%x)", (unsigned)status);
}

void qemu_policy_size(json_t *vm, uint64_t *ret_memory_mib, unsigned *ret_cpus)
{
	json_t *mem = json_object_get(vm, "memory");
	json_t *cpus = json_object_get(vm, "cpus");
	uint64_t bytes;

	*ret_memory_mib = 0;
	*ret_cpus = 0;
	if (json_is_integer(mem) && json_integer_value(mem) > 0 &&
	    json_integer_value(mem) <= QEMU_MAX_MEMORY)
		*ret_memory_mib = (uint64_t)json_integer_value(mem);
	else if (json_is_string(mem) &&
		 parse_size(json_string_value(mem), &bytes) == 0 &&
		 bytes >= 16 * 1024 * 1024 &&
		 bytes / (1024 * 1024) <= QEMU_MAX_MEMORY)
		*ret_memory_mib = bytes / (1024 * 1024);
	if (json_is_integer(cpus) && json_integer_value(cpus) > 0 &&
	    json_integer_value(cpus) <= QEMU_MAX_CPUS)
		*ret_cpus = (unsigned)json_integer_value(cpus);
}
