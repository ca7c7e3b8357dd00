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
