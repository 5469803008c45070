/* harness.h - a tiny test framework and a proxyfsd runner for the C tests. */
#ifndef PROXYFS_TEST_HARNESS_H
#define PROXYFS_TEST_HARNESS_H

#include <stdio.h>
#include <string.h>
#include <sys/types.h>

extern int t_pass, t_fail;

/* A loopback TCP port nothing listens on (one just released), or -1. */
int free_port(void);

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (cond) {                                                         \
            __atomic_fetch_add(&t_pass, 1, __ATOMIC_RELAXED);               \
        } else {                                                            \
            __atomic_fetch_add(&t_fail, 1, __ATOMIC_RELAXED);               \
            fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                   \
    } while (0)

/* Checks that expr returns want (0 or an errno). */
#define CHECK_RC(expr, want)                                                \
    do {                                                                    \
        int r_ = (expr), w_ = (want);                                       \
        if (r_ == w_) {                                                     \
            __atomic_fetch_add(&t_pass, 1, __ATOMIC_RELAXED);               \
        } else {                                                            \
            __atomic_fetch_add(&t_fail, 1, __ATOMIC_RELAXED);               \
            fprintf(stderr, "%s:%d: FAILED: %s = %d (%s), want %d (%s) [%s]\n", \
                    __FILE__, __LINE__, #expr, r_, strerror(r_), w_,        \
                    strerror(w_), proxyfs_last_error());                    \
        }                                                                   \
    } while (0)

/* A proxyfsd started for the tests, in its own temporary directory. */
typedef struct {
    const char *bin;
    const char *server_extra; /* more [server] lines for the config, or NULL */
    const char *access_extra; /* more sections at the end of it, or NULL */
    char dir[256];
    char conf[320];
    char sock[320];
    char addr[64];
    int port;
    pid_t pid;
    const char *volume; /* the volume's name; NULL: "default" */
    const char *engine; /* the volume's engine; NULL: "local" */
    const char *volume_extra; /* more lines of the volume's TOML, or NULL */
    int root_given;     /* the volume's root was given to uid 1000 */
} test_daemon_t;

/* Creates the directory and config (first call) and starts the daemon;
 * waits until it accepts connections. At the first start it gives the
 * volume's root directory to uid and gid 1000, whom the tests mount as
 * (a new volume's root is root's, mode 0755). Returns 0 or -1. Any number of
 * daemons can run at once, each with its own test_daemon_t (bin and
 * optionally volume and server_extra set, the rest zero). */
int daemon_start(test_daemon_t *d);
/* Sends sig and, for SIGKILL/SIGTERM, reaps the daemon. */
void daemon_signal(test_daemon_t *d, int sig);
/* Stops the daemon and removes its directory. */
void daemon_cleanup(test_daemon_t *d);

#endif
