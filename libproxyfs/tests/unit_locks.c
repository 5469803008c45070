/* unit_locks.c - the lock bookkeeping of locks.c, no daemon: pfs_lk_apply
 * against literal fcntl(2) cases and, at random, against a model that
 * keeps one lock type per byte; the set's invariants (sorted, disjoint,
 * same-type neighbours merged) and its bounded size; the error reason of
 * a reply; argument checks of the lock calls. Links the library objects
 * directly to reach internals. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../internal.h"

static int t_pass, t_fail;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (cond) {                                                          \
            t_pass++;                                                        \
        } else {                                                             \
            t_fail++;                                                        \
            fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                    \
    } while (0)

#define EOFR PFS_LK_EOF

/* Is s exactly the ranges of want (n of them)? */
static bool set_is(const pfs_lk_set_t *s, const pfs_lk_range_t *want, size_t n)
{
    if (s->n != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s->r[i].start != want[i].start || s->r[i].end != want[i].end ||
            s->r[i].type != want[i].type)
            return false;
    return true;
}

static void apply(pfs_lk_set_t *s, short type, uint64_t start, uint64_t end)
{
    CHECK(pfs_lk_apply(s, type, start, end) == 0);
}

static void test_literal(void)
{
    pfs_lk_set_t s = { 0 };

    /* Unlock of nothing: nothing, no memory. */
    apply(&s, F_UNLCK, 0, EOFR);
    CHECK(s.n == 0 && s.r == NULL);

    /* Split: a write lock [0,100), unlock [40,60). */
    apply(&s, F_WRLCK, 0, 100);
    apply(&s, F_UNLCK, 40, 60);
    {
        pfs_lk_range_t w[] = { { 0, 40, F_WRLCK }, { 60, 100, F_WRLCK } };
        CHECK(set_is(&s, w, 2));
    }
    /* Convert the middle of the first part to a read lock. */
    apply(&s, F_RDLCK, 10, 20);
    {
        pfs_lk_range_t w[] = { { 0, 10, F_WRLCK }, { 10, 20, F_RDLCK },
                               { 20, 40, F_WRLCK }, { 60, 100, F_WRLCK } };
        CHECK(set_is(&s, w, 4));
    }
    /* A write lock over the gap and the read lock merges everything. */
    apply(&s, F_WRLCK, 10, 60);
    {
        pfs_lk_range_t w[] = { { 0, 100, F_WRLCK } };
        CHECK(set_is(&s, w, 1));
    }
    /* Touching ranges of one type merge; of another type they do not. */
    apply(&s, F_WRLCK, 100, 150);
    apply(&s, F_RDLCK, 150, 200);
    {
        pfs_lk_range_t w[] = { { 0, 150, F_WRLCK }, { 150, 200, F_RDLCK } };
        CHECK(set_is(&s, w, 2));
    }
    /* To end of file: a read lock from 180 on takes over [180, EOF). */
    apply(&s, F_RDLCK, 180, EOFR);
    {
        pfs_lk_range_t w[] = { { 0, 150, F_WRLCK }, { 150, EOFR, F_RDLCK } };
        CHECK(set_is(&s, w, 2));
    }
    /* Unlock from 50 to end of file. */
    apply(&s, F_UNLCK, 50, EOFR);
    {
        pfs_lk_range_t w[] = { { 0, 50, F_WRLCK } };
        CHECK(set_is(&s, w, 1));
    }
    /* The last offset: [2^63-1, EOF). */
    apply(&s, F_WRLCK, EOFR - 1, EOFR);
    {
        pfs_lk_range_t w[] = { { 0, 50, F_WRLCK }, { EOFR - 1, EOFR, F_WRLCK } };
        CHECK(set_is(&s, w, 2));
    }
    /* Unlock everything frees the memory. */
    apply(&s, F_UNLCK, 0, EOFR);
    CHECK(s.n == 0 && s.r == NULL && s.cap == 0);

    /* After pfs_lk_reserve, a split does not allocate. */
    apply(&s, F_WRLCK, 0, 10);
    CHECK(pfs_lk_reserve(&s) == 0);
    CHECK(s.cap >= s.n + 2);
    {
        pfs_lk_range_t *before = s.r;

        apply(&s, F_RDLCK, 4, 6);
        CHECK(s.r == before && s.n == 3);
    }
    pfs_lk_set_free(&s);
    CHECK(s.n == 0 && s.r == NULL);
}

/* The model: the lock type of each of the bytes 0..NB-2, and the type of
 * every byte from NB-1 to the end of the file in the last cell. */
#define NB 48

static uint64_t cell_end(int i)
{
    return i == NB - 1 ? EOFR : (uint64_t)i + 1;
}

static void model_apply(short *m, short type, int s, int e /* e == NB: EOF */)
{
    for (int i = s; i < e; i++)
        m[i] = type;
}

/* The set's invariants, and does it cover exactly what the model says? */
static bool set_matches(const pfs_lk_set_t *s, const short *m)
{
    short got[NB];

    for (int i = 0; i < NB; i++)
        got[i] = F_UNLCK;
    for (size_t k = 0; k < s->n; k++) {
        const pfs_lk_range_t *r = &s->r[k];

        if (r->start >= r->end || (r->type != F_RDLCK && r->type != F_WRLCK))
            return false;
        if (k > 0) {
            const pfs_lk_range_t *p = &s->r[k - 1];

            if (p->end > r->start)
                return false; /* unsorted or overlapping */
            if (p->end == r->start && p->type == r->type)
                return false; /* not merged */
        }
        for (int i = 0; i < NB; i++) {
            uint64_t b = (uint64_t)i;

            if (b >= r->start && cell_end(i) <= r->end)
                got[i] = r->type;
            else if (b < r->end && cell_end(i) > r->start)
                return false; /* a range edge inside the EOF cell */
        }
    }
    return memcmp(got, m, sizeof(got)) == 0;
}

static void test_random(void)
{
    static const short types[] = { F_RDLCK, F_WRLCK, F_UNLCK };
    unsigned seed = 12345;
    size_t maxn = 0, maxcap = 0;
    bool ok = true;

    for (int round = 0; round < 200 && ok; round++) {
        pfs_lk_set_t s = { 0 };
        short m[NB];

        for (int i = 0; i < NB; i++)
            m[i] = F_UNLCK;
        for (int op = 0; op < 300 && ok; op++) {
            short t = types[rand_r(&seed) % 3];
            int a = rand_r(&seed) % (NB - 1);
            int len = rand_r(&seed) % 8 == 0 ? 0 : 1 + rand_r(&seed) % 12;
            int e = len == 0 || a + len >= NB - 1 ? NB : a + len;
            uint64_t end = e == NB ? EOFR : (uint64_t)e;

            if (pfs_lk_apply(&s, t, (uint64_t)a, end) != 0)
                ok = false;
            model_apply(m, t, a, e);
            if (!set_matches(&s, m)) {
                fprintf(stderr, "round %d op %d: type %d [%d, %d) differs\n",
                        round, op, t, a, e);
                ok = false;
            }
            if (s.n > maxn)
                maxn = s.n;
            if (s.cap > maxcap)
                maxcap = s.cap;
        }
        pfs_lk_set_free(&s);
    }
    CHECK(ok);
    /* Bounded: the set is the merged state (at most one range per byte
     * here), never a log of the 300 calls. */
    CHECK(maxn <= NB);
    CHECK(maxcap <= 2 * NB + 4);
}

/* Many locks, then most of them unlocked: the memory shrinks back. */
static void test_shrink(void)
{
    pfs_lk_set_t s = { 0 };
    int bad = 0;

    for (uint64_t i = 0; i < 10000; i++)
        bad |= pfs_lk_apply(&s, i % 2 ? F_RDLCK : F_WRLCK, i * 10, i * 10 + 5);
    CHECK(bad == 0 && s.n == 10000);
    apply(&s, F_UNLCK, 100, EOFR);
    CHECK(s.n == 10);
    CHECK(s.cap <= 64);
    /* Same-type locks over the gaps merge into one range. */
    apply(&s, F_WRLCK, 0, 100);
    CHECK(s.n == 1 && s.r[0].start == 0 && s.r[0].end == 100);
    pfs_lk_set_free(&s);
}

static void test_reason(void)
{
    json_t *r = json_loads("{\"jsonrpc\":\"2.0\",\"id\":30,\"error\":{\"code\":11,"
                           "\"message\":\"lock: in grace period after restart, "
                           "only reclaims are granted\",\"data\":{\"errno\":11,"
                           "\"name\":\"EAGAIN\",\"reason\":\"grace\"}}}", 0, NULL);
    json_t *res;
    bool bad;

    CHECK(r != NULL);
    CHECK(pfs_json_reply_status(r, &res, &bad) == EAGAIN && !bad);
    CHECK(pfs_json_reply_reason(r) != NULL &&
          strcmp(pfs_json_reply_reason(r), "grace") == 0);
    json_decref(r);
    r = json_loads("{\"jsonrpc\":\"2.0\",\"id\":12,\"error\":{\"code\":11,"
                   "\"message\":\"lock: resource temporarily unavailable\","
                   "\"data\":{\"errno\":11,\"name\":\"EAGAIN\"}}}", 0, NULL);
    CHECK(r != NULL && pfs_json_reply_reason(r) == NULL);
    json_decref(r);
    r = json_loads("{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":11,"
                   "\"message\":\"more than 256 requests in flight\","
                   "\"data\":{\"errno\":11,\"name\":\"EAGAIN\",\"reason\":\"busy\"}}}",
                   0, NULL);
    CHECK(r != NULL && pfs_json_reply_reason(r) != NULL &&
          strcmp(pfs_json_reply_reason(r), "busy") == 0);
    json_decref(r);
    r = json_loads("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}", 0, NULL);
    CHECK(r != NULL && pfs_json_reply_reason(r) == NULL);
    json_decref(r);
    CHECK(pfs_json_reply_reason(NULL) == NULL);
}

/* Without a mount: EINVAL, errno untouched, outputs untouched. */
static void test_args(void)
{
    proxyfs_lock_t l = { .type = 99, .owner = "x" };
    uint64_t u = 7;
    int n = 5;

    errno = 1234;
    CHECK(proxyfs_lock(NULL, 1, F_SETLK, F_WRLCK, 0, 0, "o", NULL) == EINVAL);
    CHECK(proxyfs_lock(NULL, 1, F_GETLK, F_RDLCK, 0, 0, "o", &l) == EINVAL);
    CHECK(l.type == 99 && strcmp(l.owner, "x") == 0);
    CHECK(proxyfs_flock(NULL, 1, LOCK_EX) == EINVAL);
    CHECK(proxyfs_lock_cancel(NULL, 1, "o", &n) == EINVAL && n == 5);
    CHECK(proxyfs_lost_locks(NULL, &u) == EINVAL && u == 7);
    CHECK(errno == 1234);
}

int main(void)
{
    test_literal();
    test_random();
    test_shrink();
    test_reason();
    test_args();
    printf("unit_locks: %d passed, %d failed\n", t_pass, t_fail);
    return t_fail == 0 ? 0 : 1;
}
