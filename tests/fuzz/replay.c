/* SPDX-License-Identifier: MIT */
/* main() for a fuzz target built without libFuzzer: runs every file
 * named on the command line, and every file in every directory named,
 * once through LLVMFuzzerTestOneInput.  This is how `make check`
 * replays the corpus with any compiler.  A target aborts on a bad
 * input; we exit 0 when all ran, 1 on an I/O error or if none did. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Read path into a buffer of exactly its size, so that a sanitizer
 * sees any read past the end. */
static int run_file(const char *path)
{
	FILE *f;
	struct stat st;
	uint8_t *buf;
	size_t n;

	f = fopen(path, "rb");
	if (!f || fstat(fileno(f), &st) < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	n = (size_t)st.st_size;
	buf = malloc(n ? n : 1);
	if (!buf || fread(buf, 1, n, f) != n) {
		fprintf(stderr, "replay: %s: short read\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	/* Named first: if the target aborts, this is the last line. */
	fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;
}

/* Every regular file in dir, in name order; returns how many ran or -1. */
static int run_dir(const char *dir)
{
	struct dirent **ents;
	int n, ran = 0;

	n = scandir(dir, &ents, NULL, alphasort);
	if (n < 0) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name);
		if (ran >= 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode))
			ran = run_file(path) < 0 ? -1 : ran + 1;
		free(ents[i]);
	}
	free(ents);
	return ran;
}

int main(int argc, char **argv)
{
	struct stat st;
	int total = 0, r;

	for (int i = 1; i < argc; i++) {
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
			r = run_dir(argv[i]);
		else
			r = run_file(argv[i]) < 0 ? -1 : 1;
		if (r < 0)
			return 1;
		total += r;
	}
	printf("replay: %d inputs ran\n", total);
	return total > 0 ? 0 : 1;
}
