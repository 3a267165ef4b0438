/* A power cut for tests, loaded with LD_PRELOAD: what reached the disk is what was fsynced.
 *
 * Each fsync() or fdatasync() of a regular file under $POWERCUT_DIR copies the file's content as it is then
 * to "<file>.synced" (written aside and renamed, so a copy is whole). After the process ends, those copies
 * are the files as a power cut would leave them: every write not followed by a sync is lost, as it would be
 * with the page cache. A file never synced has no copy: it is lost whole.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void keep(int fd) {
    const char *only = getenv("POWERCUT_DIR");
    char link[64], path[PATH_MAX], copy[PATH_MAX + 16], temp[PATH_MAX + 32], buffer[65536];
    struct stat st;
    if (only == NULL || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0)
        return;
    path[n] = '\0';
    if (strncmp(path, only, strlen(only)) != 0)
        return;
    snprintf(copy, sizeof copy, "%s.synced", path);
    snprintf(temp, sizeof temp, "%s.synced.part", path);
    int out = open(temp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out < 0)
        abort(); /* a test that cannot record what was synced must not pass */
    off_t offset = 0;
    ssize_t got;
    while ((got = pread(fd, buffer, sizeof buffer, offset)) > 0) {
        if (write(out, buffer, (size_t)got) != got)
            abort();
        offset += got;
    }
    if (got < 0 || close(out) != 0 || rename(temp, copy) != 0)
        abort();
}

int fsync(int fd) {
    static int (*real)(int);
    if (real == NULL)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    keep(fd);
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (real == NULL)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    keep(fd);
    return real(fd);
}
