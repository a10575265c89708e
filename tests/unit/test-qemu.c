/* SPDX-License-Identifier: MIT */
/* Unit tests for lib/qemu.c and lib/accel.c: finding QEMU, the policy's
 * VM size, the accelerator's names, and the launcher's wait and
 * shutdown on a stand-in for QEMU (a shell script). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "accel.h"
#include "io.h"
#include "qemu.h"

#include "tap.h"

static char dir[] = "/tmp/vmferry-test-qemu.XXXXXX";

/* A stand-in for QEMU in dir: a script running body. */
static void script(const char *name, const char *body, char *path, size_t len)
{
	FILE *f;

	snprintf(path, len, "%s/%s", dir, name);
	f = fopen(path, "w");
	check(f != NULL);
	if (!f)
		return;
	fprintf(f, "#!/bin/sh\n%s\n", body);
	fclose(f);
	check_int(chmod(path, 0755), ==, 0);
}

static void test_find(void)
{
	char buf[4096], path[4200];
	const char *old = getenv("PATH");
	char *saved = old ? strdup(old) : NULL;

	check_int(qemu_find("sh", buf, sizeof(buf)), ==, 0);
	check(strchr(buf, '/') != NULL);
	check_int(qemu_find("/nonexistent/qemu", buf, sizeof(buf)), ==,
		  -ENOENT);
	check_int(qemu_find("no-such-qemu-here", buf, sizeof(buf)), ==,
		  -ENOENT);
	/* Not executable: not found. */
	script("plain", "exit 0", path, sizeof(path));
	check_int(chmod(path, 0644), ==, 0);
	setenv("PATH", dir, 1);
	check_int(qemu_find("plain", buf, sizeof(buf)), ==, -ENOENT);
	check_int(chmod(path, 0755), ==, 0);
	check_int(qemu_find("plain", buf, sizeof(buf)), ==, 0);
	check(strcmp(buf, path) == 0);
	if (saved)
		setenv("PATH", saved, 1);
	free(saved);
}

static void size_of(const char *json, uint64_t want_mib, unsigned want_cpus)
{
	json_t *o = json ? json_loads(json, 0, NULL) : NULL;
	uint64_t mib = 99;
	unsigned cpus = 99;

	qemu_policy_size(o, &mib, &cpus);
	check_uint(mib, ==, want_mib);
	check_uint(cpus, ==, want_cpus);
	json_decref(o);
}

static void test_policy(void)
{
	size_of(NULL, 0, 0);
	size_of("{}", 0, 0);
	size_of("{\"memory\": \"2G\", \"cpus\": 2}", 2048, 2);
	size_of("{\"memory\": 512}", 512, 0);
	size_of("{\"memory\": \"256M\", \"cpus\": 1}", 256, 1);
	size_of("{\"memory\": \"8M\"}", 0, 0);	 /* under 16 MiB */
	size_of("{\"memory\": \"lots\"}", 0, 0); /* not a size */
	size_of("{\"memory\": -1, \"cpus\": 0}", 0, 0);
	size_of("{\"cpus\": 100000}", 0, 0);
	size_of("{\"cpus\": \"2\"}", 0, 0);
}

static void test_accel(void)
{
	enum accel a = ACCEL_TCG;
	char why[256];

	check_int(accel_parse("kvm", &a), ==, 0);
	check(a == ACCEL_KVM);
	check_int(accel_parse("tcg", &a), ==, 0);
	check(a == ACCEL_TCG);
	check_int(accel_parse("auto", &a), ==, 1);
	check_int(accel_parse("xen", &a), ==, -EINVAL);
	check(strcmp(accel_name(ACCEL_KVM), "kvm") == 0);
	/* $VMFERRY_ACCEL wins, no probe; a bad one is an error. */
	setenv("VMFERRY_ACCEL", "kvm", 1);
	check_int(accel_pick("/nonexistent/qemu", &a, why, sizeof(why)), ==, 0);
	check(a == ACCEL_KVM);
	setenv("VMFERRY_ACCEL", "fast", 1);
	check_int(accel_pick("/nonexistent/qemu", &a, why, sizeof(why)), ==,
		  -EINVAL);
	unsetenv("VMFERRY_ACCEL");
}

static struct qemu *start(const char *binary)
{
	char qmp[4200];
	struct qemu_config cfg = {
	    .binary = binary,
	    .disk = "/dev/null",
	    .qmp_path = qmp,
	    .in_fd = -1,
	    .out_fd = -1,
	    .err_fd = -1,
	};
	struct qemu *q = NULL;

	snprintf(qmp, sizeof(qmp), "%s/qmp.sock", dir);
	check_int(qemu_start(&cfg, &q), ==, 0);
	return q;
}

static void test_launch(void)
{
	char path[4200], desc[64];
	struct qemu *q;
	int st = 0;

	/* It exits by itself: its status. */
	script("exits", "exit 3", path, sizeof(path));
	q = start(path);
	check_int(qemu_wait(q, 10000, &st), ==, 0);
	check(WIFEXITED(st) && WEXITSTATUS(st) == 3);
	qemu_describe_status(st, desc, sizeof(desc));
	check(strcmp(desc, "exited with status 3") == 0);
	qemu_free(q);

	/* It runs on, without QMP: a wait times out, a shutdown ends up
	 * killing it (the only process it ever signals). */
	script("hangs", "exec sleep 60", path, sizeof(path));
	q = start(path);
	check_int(qemu_wait(q, 200, &st), ==, -ETIMEDOUT);
	check_int(qemu_powerdown(q), <, 0);
	qemu_shutdown(q, 100, &st);
	check(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	check_int(qemu_wait(q, 0, &st), ==, 0); /* reaped: answers again */
	qemu_free(q);

	/* A binary that cannot run: 127, as a shell says. */
	q = start("/nonexistent/qemu");
	check_int(qemu_wait(q, 10000, &st), ==, 0);
	check(WIFEXITED(st) && WEXITSTATUS(st) == 127);
	qemu_free(q);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	TEST(test_find(), "qemu_find: PATH, paths, executables only");
	TEST(test_policy(), "the policy's vm memory and cpus");
	TEST(test_accel(), "accelerator names and $VMFERRY_ACCEL");
	TEST(test_launch(), "launch, wait, shutdown, kill");
	if (rm_rf(dir) < 0)
		fprintf(stderr, "# could not remove %s\n", dir);
	return test_done();
}
