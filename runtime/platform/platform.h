/*
 * Platform layer: futexes, clocks, the CPUs to run on (cpus.h) and
 * cache-line helpers.
 * Linux only for now; everything above this file is portable C11.
 */
#ifndef TR_PLATFORM_H
#define TR_PLATFORM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "platform/cpus.h"

#define TR_CACHE_LINE 64
#define TR_CACHE_ALIGNED _Alignas(TR_CACHE_LINE)

#define TR_LIKELY(x) __builtin_expect(!!(x), 1)
#define TR_UNLIKELY(x) __builtin_expect(!!(x), 0)
/* For the cold half of a hot function: kept out of its body. */
#define TR_NOINLINE __attribute__((noinline))

/* Monotonic clock in nanoseconds. */
uint64_t tr__now_ns(void);

/* Blocks while *addr == expected, for at most timeout_ns (< 0: no limit).
 * May return spuriously; callers re-check their condition. */
void tr__futex_wait(
    _Atomic uint32_t *addr, uint32_t expected, int64_t timeout_ns);

/* Wakes up to n threads blocked in tr__futex_wait on addr. */
void tr__futex_wake(_Atomic uint32_t *addr, int n);

/* How many CPUs the process may use, and pinning within them: cpus.h. */

/* A sequentially consistent fence. ThreadSanitizer does not model fences
 * (GCC warns and ignores them), so in TSan builds a seq_cst read-modify-
 * write on one shared word stands in: it orders like a fence and gives
 * TSan the happens-before edges the fence provides. */
#if defined(__SANITIZE_THREAD__)
extern _Atomic uint32_t tr__tsan_fence_word;
#define tr__fence_sc()                                                         \
	((void)atomic_fetch_add_explicit(                                      \
	    &tr__tsan_fence_word, 0, memory_order_seq_cst))
#else
#define tr__fence_sc() atomic_thread_fence(memory_order_seq_cst)
#endif

/* A pause hint for spin loops. */
static inline void tr__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

#endif
