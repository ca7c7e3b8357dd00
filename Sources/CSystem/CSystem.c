#define _GNU_SOURCE
#include "CSystem.h"
#include <fcntl.h>
#include <stdlib.h>
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
