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
