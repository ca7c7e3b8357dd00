// GNU extensions that Swift's Glibc module does not export (it is built
// without _GNU_SOURCE): thin wrappers, and csystem_spawn_tool, which posix_spawn cannot replace.
#pragma once
#include <spawn.h>
#include <sys/types.h>
#include <stddef.h>

int csystem_pipe2_cloexec(int fds[2]);
int csystem_mkostemp_cloexec(char *template_path);
ssize_t csystem_getrandom(void *buffer, size_t length);
int csystem_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path);
int csystem_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int lowfd);
int csystem_ficlone(int dst_fd, int src_fd);
ssize_t csystem_copy_file_range(int in_fd, long long *in_off, int out_fd, long long *out_off, size_t length);
long long csystem_seek_data(int fd, long long offset);
long long csystem_seek_hole(int fd, long long offset);
int csystem_start_writeback(int fd, long long offset, long long length);
int csystem_image_write_locked(int fd);
ssize_t csystem_getxattr(const char *path, const char *name, void *value, size_t size);

/* Where a tool's stdin, stdout and stderr come from (-1: ours) and the
 * directory it starts in (NULL: ours). */
typedef struct {
    int stdin_fd;
    int stdout_fd;
    int stderr_fd;
    const char *directory;
} csystem_child_io;
/* Fork and exec a child that gets SIGKILL when we die; its pid, or -errno. */
pid_t csystem_spawn_tool(const char *path, char *const argv[], char *const envp[], const csystem_child_io *io);
