/* util.c - per-thread error detail, clocks and process-wide configuration. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static __thread char pfs_errbuf[512];

void pfs_clear_error(void)
{
    pfs_errbuf[0] = '\0';
}

int pfs_set_error(int code, const char *fmt, ...)
{
    int saved = errno;
    char msg[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(pfs_errbuf, sizeof(pfs_errbuf), "%s: %s",
             code > 0 ? pfs_errno_name(code) : "error", msg);
    errno = saved;
    return code;
}

const char *proxyfs_last_error(void)
{
    return pfs_errbuf;
}

uint64_t pfs_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void pfs_sleep_ms(uint64_t ms)
{
    int saved = errno;
    struct timespec ts = { .tv_sec = (time_t)(ms / 1000),
                           .tv_nsec = (long)(ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    errno = saved;
}

void pfs_deadline_ts(uint64_t deadline_ms, struct timespec *ts)
{
    ts->tv_sec = (time_t)(deadline_ms / 1000);
    ts->tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
}

int pfs_cond_init(pthread_cond_t *c)
{
    pthread_condattr_t attr;
    int rc;

    if ((rc = pthread_condattr_init(&attr)) != 0)
        return rc;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    rc = pthread_cond_init(c, &attr);
    pthread_condattr_destroy(&attr);
    return rc;
}

/* ---------------------------------------------------------- configuration */

static pthread_mutex_t cfg_lock = PTHREAD_MUTEX_INITIALIZER;
static char cfg_server[PFS_MAX_ADDR]; /* "" = not set by proxyfs_set_server */
static uint64_t cfg_timeout_ms = PFS_DEFAULT_TIMEOUT_MS;

int proxyfs_set_server(const char *in_address)
{
    PFS_API_ENTER();
    if (in_address == NULL || in_address[0] == '\0')
        PFS_API_RETURN(pfs_set_error(EINVAL, "empty server address"));
    if (strlen(in_address) >= PFS_MAX_ADDR)
        PFS_API_RETURN(pfs_set_error(EINVAL, "server address too long"));
    pthread_mutex_lock(&cfg_lock);
    strcpy(cfg_server, in_address);
    pthread_mutex_unlock(&cfg_lock);
    PFS_API_RETURN(0);
}

int proxyfs_set_timeout(uint32_t in_timeout_ms)
{
    PFS_API_ENTER();
    pthread_mutex_lock(&cfg_lock);
    cfg_timeout_ms = in_timeout_ms ? in_timeout_ms : PFS_DEFAULT_TIMEOUT_MS;
    pthread_mutex_unlock(&cfg_lock);
    PFS_API_RETURN(0);
}

void pfs_config_server(char *buf)
{
    const char *env;

    pthread_mutex_lock(&cfg_lock);
    if (cfg_server[0] != '\0') {
        memcpy(buf, cfg_server, PFS_MAX_ADDR);
        pthread_mutex_unlock(&cfg_lock);
        return;
    }
    pthread_mutex_unlock(&cfg_lock);
    env = getenv("PROXYFS_SERVER");
    if (env != NULL && env[0] != '\0' && strlen(env) < PFS_MAX_ADDR)
        strcpy(buf, env);
    else
        strcpy(buf, PFS_DEFAULT_SERVER);
}

void pfs_server_addr(const char *fixed, char *buf)
{
    if (fixed != NULL) {
        strncpy(buf, fixed, PFS_MAX_ADDR - 1);
        buf[PFS_MAX_ADDR - 1] = '\0';
    } else {
        pfs_config_server(buf);
    }
}

uint64_t pfs_config_timeout_ms(void)
{
    uint64_t t;

    pthread_mutex_lock(&cfg_lock);
    t = cfg_timeout_ms;
    pthread_mutex_unlock(&cfg_lock);
    return t;
}

const char *pfs_errno_name(int e)
{
    switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EIO: return "EIO";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    case EFBIG: return "EFBIG";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    case ERANGE: return "ERANGE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOSYS: return "ENOSYS";
    case ENOTEMPTY: return "ENOTEMPTY";
    case ELOOP: return "ELOOP";
    case ENODATA: return "ENODATA";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EPROTO: return "EPROTO";
    case E2BIG: return "E2BIG";
    default: return "errno";
    }
}

int pfs_gone(uint64_t ino, int rc)
{
    if (rc != ENOENT)
        return rc;
    return pfs_set_error(EBADF, "inode %" PRIu64 " is gone (removed, and open nowhere)", ino);
}
