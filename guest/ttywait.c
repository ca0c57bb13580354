/*
 * hull-ttywait: runs inside a container as the first program of `hull exec -t` with crun, then execs the
 * user's command. crun (up to at least 1.8) sets an exec process's terminal size from its parent after the
 * fork, while the child goes on to exec the command without waiting: a command that reads its terminal size
 * at once (stty size, a shell's first prompt) can see 0x0. runc sets the size before the exec. This program
 * waits until the terminal on stdin has a size (TIOCGWINSZ), then execs argv[1..] with the PATH of the
 * process's environment, so the command always starts with its size in place.
 *
 * hull hands it in as fd 3 (crun exec --preserve-fds 1) and runs /proc/self/fd/3: nothing is added to the
 * container's filesystem. fd 3 is closed before the exec.
 *
 * Build: musl-gcc -static -Os -s -Wall -o guest/hull-ttywait guest/ttywait.c (scripts/setup.sh does).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/* the longest wait for the size (then the command runs anyway): 10 s */
#define WAIT_SLICES 1000
#define SLICE_NS 10000000L

/* 1: stdin is a terminal with a size; 0: a terminal still at 0x0; -1: not a terminal */
static int sized(void) {
  struct winsize ws;
  if (ioctl(0, TIOCGWINSZ, &ws) != 0) return -1;
  return ws.ws_row > 0 && ws.ws_col > 0;
}

int main(int argc, char **argv) {
  close(3);
  if (argc < 2) {
    fprintf(stderr, "usage: hull-ttywait COMMAND [ARG]...\n");
    return 125;
  }
  /* Setting the size of a terminal signals SIGWINCH to its foreground process group, which is this
   * process (the session leader of the exec's terminal): block it, check, then wait for it. The wait is
   * sliced so that a size set without a signal is still seen. */
  sigset_t winch, old;
  sigemptyset(&winch);
  sigaddset(&winch, SIGWINCH);
  sigprocmask(SIG_BLOCK, &winch, &old);
  struct timespec slice = {0, SLICE_NS};
  for (int i = 0; i < WAIT_SLICES && sized() == 0; i++) sigtimedwait(&winch, NULL, &slice);
  sigprocmask(SIG_SETMASK, &old, NULL);
  execvp(argv[1], argv + 1);
  /* docker's exec: 126 whether the command is missing or cannot run, with the message docker prints */
  int e = errno;
  const char *pre = "OCI runtime exec failed: exec failed: unable to start container process: exec";
  if (e == ENOENT && !strchr(argv[1], '/'))
    fprintf(stderr, "%s: \"%s\": executable file not found in $PATH: unknown\n", pre, argv[1]);
  else if (e == ENOENT || e == ENOTDIR)
    fprintf(stderr, "%s: \"%s\": stat %s: no such file or directory: unknown\n", pre, argv[1], argv[1]);
  else if (e == EACCES || e == EISDIR || e == EPERM)
    fprintf(stderr, "%s: \"%s\": permission denied: unknown\n", pre, argv[1]);
  else if (e == ENOEXEC)
    fprintf(stderr, "%s: \"%s\": exec format error: unknown\n", pre, argv[1]);
  else
    fprintf(stderr, "%s: \"%s\": %s: unknown\n", pre, argv[1], strerror(e));
  return 126;
}
