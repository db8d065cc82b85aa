/* SPDX-License-Identifier: MIT */
/*
 * Child processes for the (threaded) mounter, through posix_spawn: the
 * signal mask and every disposition reset (the mounter blocks SIGTERM for
 * its signalfd; spfs must not inherit that and ignore the kubelet's stop),
 * a new session (a terminal's ^C never reaches the daemons), stdin from
 * /dev/null, stdout and stderr into one pipe. Every other descriptor of the
 * mounter is close-on-exec.
 */
#include "config.h"

#include "csi/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Variables passed through to spfs: locale and time zone, and the
 * sanitizer settings of a sanitizer build. */
static const char *const pass_through[] = {
    "LANG", "LC_ALL", "TZ", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"};

#define ENV_MAX 16

static void build_env(char *env[ENV_MAX], char *storage, size_t size)
{
	size_t n = 0, used = 0;

	env[n++] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
		   "/sbin:/bin";
	env[n++] = "HOME=/";
	for (size_t i = 0; i < sizeof(pass_through) / sizeof(pass_through[0]);
	     i++) {
		const char *v = getenv(pass_through[i]);
		int len;
		if (!v)
			continue;
		len = snprintf(storage + used, size - used, "%s=%s",
			       pass_through[i], v);
		if (len < 0 || (size_t)len >= size - used)
			break;
		env[n++] = storage + used;
		used += (size_t)len + 1;
	}
	env[n] = NULL;
}

int spawn_start(char *const argv[], pid_t *pid, int *out_fd)
{
	char *env[ENV_MAX], storage[8192];
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int pipefd[2], err;

	build_env(env, storage, sizeof(storage));
	if (pipe2(pipefd, O_CLOEXEC) != 0)
		return -errno;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	err =
	    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	err = err ? err : posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	err = err ? err : posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
	err = err ? err : posix_spawnattr_setsigmask(&attr, &none);
	err = err ? err : posix_spawnattr_setsigdefault(&attr, &all);
	err = err ? err
		  : posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
							POSIX_SPAWN_SETSIGDEF |
							POSIX_SPAWN_SETSID);
	err = err ? err : posix_spawn(pid, argv[0], &fa, &attr, argv, env);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	if (err) {
		close(pipefd[0]);
		return -err;
	}
	fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
	*out_fd = pipefd[0];
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int spawn_run(char *const argv[], int timeout_ms, struct buf *out)
{
	long long deadline = now_ms() + timeout_ms;
	char chunk[4096];
	int fd, status = 0, err = 0;
	pid_t pid, w;

	err = spawn_start(argv, &pid, &fd);
	if (err)
		return err;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		long long left = deadline - now_ms();
		if (left <= 0) {
			kill(pid, SIGKILL);
			err = -ETIMEDOUT;
			break;
		}
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR) {
			err = -errno;
			kill(pid, SIGKILL);
			break;
		}
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n == 0)
			break; /* EOF: the child (and its children) are done */
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			err = -errno;
			kill(pid, SIGKILL);
			break;
		}
		if (n > 0 && out->len < out->max) {
			size_t room = out->max - out->len;
			buf_append(out, chunk,
				   (size_t)n < room ? (size_t)n : room);
		}
	}
	close(fd);
	do
		w = waitpid(pid, &status, 0);
	while (w < 0 && errno == EINTR);
	if (err)
		return err;
	if (w < 0)
		return -errno;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}
