/* timing.h: the clock and the timed brackets the benchmark guests share
 * (notifybench.c, vblkbench.c). Include sv.h first. rdtsc counts
 * nanoseconds since the VM started (docs/guest-abi.md), and the host reads
 * the same clock (ExecutionEngine.ReadTsc).
 *
 * A bracket is one asm statement: two rdtsc with exactly the instructions
 * being timed between them. Written in C, gcc put spills and the result's
 * bookkeeping inside the bracket too. Each returns the difference. */
#ifndef TIMING_H
#define TIMING_H

#ifndef SV_H
#error "include sv.h before timing.h"
#endif

static inline SV_UNUSED u64 rdtsc(void)
{
    u32 lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((u64)hi << 32) | lo;
}

/* Spin until the clock reaches t. */
static SV_UNUSED void wait_until(u64 t)
{
    while (rdtsc() < t)
        __asm__ volatile("pause");
}

/* One LHCALL_NOTIFY of `value`: the call number's move and the int. EBX has
 * the value before the first rdtsc, as a guest's register already holds
 * what it notifies. The notify's EAX is not kept (that would be a move
 * inside the bracket): the host checks the eventfd's or the map's count
 * instead. */
static inline SV_UNUSED u32 timed_notify(u32 value)
{
    u32 t0, t1;
    __asm__ volatile("rdtsc\n\t"
                     "mov %%eax, %%edi\n\t"
                     "mov $17, %%eax\n\t" /* LHCALL_NOTIFY */
                     "int $0x1f\n\t"
                     "rdtsc"
                     : "=a"(t1), "=D"(t0)
                     : "b"(value)
                     : "edx", "memory");
    return t1 - t0;
}

/* One plain 32-bit store of `v` to `addr`: a device register (a doorbell)
 * when addr is in a device window. */
static inline SV_UNUSED u32 timed_store(u32 addr, u32 v)
{
    u32 t0, t1;
    __asm__ volatile("rdtsc\n\t"
                     "mov %%eax, %%edi\n\t"
                     "movl %%ecx, (%%esi)\n\t"
                     "rdtsc"
                     : "=a"(t1), "=D"(t0)
                     : "S"(addr), "c"(v)
                     : "edx", "memory");
    return t1 - t0;
}

/* What the brackets cost with nothing between the two rdtsc but the move
 * that keeps the first reading. */
static inline SV_UNUSED u32 timed_nothing(void)
{
    u32 t0, t1;
    __asm__ volatile("rdtsc\n\t"
                     "mov %%eax, %%edi\n\t"
                     "rdtsc"
                     : "=a"(t1), "=D"(t0)
                     :
                     : "edx", "memory");
    return t1 - t0;
}

#endif
