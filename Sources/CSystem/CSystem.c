#define _GNU_SOURCE
#include "CSystem.h"
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>

int csystem_pipe2_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int csystem_mkostemp_cloexec(char *template_path) { return mkostemp(template_path, O_CLOEXEC); }

ssize_t csystem_getrandom(void *buffer, size_t length) { return getrandom(buffer, length, 0); }

int csystem_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np(actions, path);
}

int csystem_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int lowfd) {
    return posix_spawn_file_actions_addclosefrom_np(actions, lowfd);
}

#include <sys/ioctl.h>
#include <linux/fs.h>
#include <unistd.h>

int csystem_ficlone(int dst_fd, int src_fd) {
    return ioctl(dst_fd, FICLONE, src_fd);
}

ssize_t csystem_copy_file_range(int in_fd, long long *in_off, int out_fd, long long *out_off, size_t length) {
    loff_t a = *in_off, b = *out_off;
    ssize_t n = copy_file_range(in_fd, &a, out_fd, &b, length, 0);
    *in_off = a;
    *out_off = b;
    return n;
}

long long csystem_seek_data(int fd, long long offset) { return lseek(fd, offset, SEEK_DATA); }
long long csystem_seek_hole(int fd, long long offset) { return lseek(fd, offset, SEEK_HOLE); }

#include <fcntl.h>
int csystem_start_writeback(int fd, long long offset, long long length) {
    return sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE);
}

/* QEMU's image locking (block/file-posix.c): a user holding the WRITE
 * permission keeps a shared OFD lock on byte 100 + 1. Asking whether an
 * exclusive lock there would conflict tells whether some QEMU writes. */
int csystem_image_write_locked(int fd) {
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 101, .l_len = 1, .l_pid = 0 };
    if (fcntl(fd, F_OFD_GETLK, &fl) != 0) return -1;
    return fl.l_type != F_UNLCK;
}

#include <sys/xattr.h>
ssize_t csystem_getxattr(const char *path, const char *name, void *value, size_t size) {
    return getxattr(path, name, value, size);
}

#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

/* posix_spawn cannot ask for a parent-death signal, so a tool that must
 * not outlive us (qemu-img, tar: vmcreate killed mid-import) is forked by
 * hand. Between fork and exec only async-signal-safe calls. The signal
 * follows the forking thread: callers wait for the child on that thread. */
pid_t csystem_spawn_tool(const char *path, char *const argv[], char *const envp[], const csystem_child_io *io) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) return -errno;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(report[0]);
        close(report[1]);
        return -e;
    }
    if (pid == 0) {
        int e = 0;
        /* A clean signal state, as posix_spawn's SETSIGDEF and SETSIGMASK give. */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        for (int s = 1; s < NSIG; s++) if (s != SIGKILL && s != SIGSTOP) sigaction(s, &dfl, NULL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) { e = errno; goto fail; }
        /* The parent may have died before the signal was asked for. */
        if (getppid() != parent) _exit(127);
        if (io->stdin_fd >= 0 && dup2(io->stdin_fd, 0) < 0) { e = errno; goto fail; }
        if (io->stdout_fd >= 0 && dup2(io->stdout_fd, 1) < 0) { e = errno; goto fail; }
        if (io->stderr_fd >= 0 && dup2(io->stderr_fd, 2) < 0) { e = errno; goto fail; }
        if (io->directory && chdir(io->directory) != 0) { e = errno; goto fail; }
        /* Nothing but stdio is inherited (the report pipe closes on exec). */
        if (report[1] > 3) close_range(3, report[1] - 1, 0);
        close_range(report[1] + 1, ~0U, 0);
        execve(path, argv, envp);
        e = errno;
    fail:
        while (write(report[1], &e, sizeof e) < 0 && errno == EINTR) {}
        _exit(127);
    }
    close(report[1]);
    int e = 0;
    ssize_t n;
    while ((n = read(report[0], &e, sizeof e)) < 0 && errno == EINTR) {}
    close(report[0]);
    if (n == (ssize_t)sizeof e) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        return -e;
    }
    return pid;
}
