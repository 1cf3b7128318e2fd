/* Atomic helpers for the shared-memory segment (litemesh/shm).
 *
 * lm_atomic_add_i64: the shared per-target counters, added to by every worker (lock add / ldadd).
 * lm_relaxed_*: a worker's own slot has one writer, so a relaxed load + relaxed store is enough;
 * it compiles to plain 8-byte moves but keeps the compiler from tearing or caching the access,
 * and lets the master read concurrently without a data race in the C memory model.
 */
#ifndef LM_ATOMIC_H
#define LM_ATOMIC_H
#include <stdint.h>

static inline int64_t lm_atomic_add_i64(int64_t *p, int64_t delta) {
    return __atomic_add_fetch(p, delta, __ATOMIC_RELAXED);
}

static inline int64_t lm_load_i64(const int64_t *p) {
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline uint64_t lm_load_u64(const uint64_t *p) {
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* single-writer add: not atomic as a whole, only safe in the slot's own worker */
static inline void lm_relaxed_add_u64(uint64_t *p, uint64_t delta) {
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + delta, __ATOMIC_RELAXED);
}

static inline void lm_relaxed_add_i64(int64_t *p, int64_t delta) {
    /* through uint64_t: wrap-around is defined, signed overflow is not */
    __atomic_store_n(p, (int64_t)((uint64_t)__atomic_load_n(p, __ATOMIC_RELAXED) + (uint64_t)delta),
                     __ATOMIC_RELAXED);
}
#endif
