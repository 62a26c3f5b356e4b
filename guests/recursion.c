/* Deep and wide recursion: many calls and returns, so the translator's
 * return handling and the guest stack at the top of RAM get a workout. */
#include "sv.h"

static u32 fib(u32 n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

/* noinline so gcc keeps real calls rather than turning the whole thing
 * into loops it can see through. */
static __attribute__((noinline)) u32 ackermann(u32 m, u32 n)
{
    if (m == 0) return n + 1;
    if (n == 0) return ackermann(m - 1, 1);
    return ackermann(m - 1, ackermann(m, n - 1));
}

static u32 moves, move_hash;

static __attribute__((noinline)) void hanoi(u32 n, u32 from, u32 to, u32 via)
{
    if (n == 0) return;
    hanoi(n - 1, from, via, to);
    moves++;
    move_hash = sv_mix(move_hash, n << 4 | from << 2 | to);
    hanoi(n - 1, via, to, from);
}

/* Mutual recursion through function pointers. */
typedef u32 (*step_fn)(u32, u32);
static u32 is_even(u32 n, u32 depth);
static u32 is_odd(u32 n, u32 depth);
static const step_fn steps[2] = {is_even, is_odd};
static __attribute__((noinline)) u32 is_even(u32 n, u32 depth) { return n == 0 ? depth : steps[1](n - 1, depth + 1); }
static __attribute__((noinline)) u32 is_odd(u32 n, u32 depth) { return n == 0 ? depth | 0x80000000u : steps[0](n - 1, depth + 1); }

int main(void)
{
    u32 h = 0;
    for (u32 n = 0; n <= 24; n += 6) {
        sv_puts("fib ");
        sv_putu(n);
        sv_putc(' ');
        sv_putu(fib(n));
        sv_putc('\n');
        h = sv_mix(h, fib(n));
    }
    for (u32 m = 0; m <= 3; m++) {
        u32 a = ackermann(m, 5);
        sv_puts("ackermann ");
        sv_putu(m);
        sv_puts(" 5 ");
        sv_putu(a);
        sv_putc('\n');
        h = sv_mix(h, a);
    }
    hanoi(16, 0, 2, 1);
    sv_kv("hanoi moves", moves);
    sv_kvx("hanoi hash", move_hash);
    h = sv_mix(sv_mix(h, moves), move_hash);
    u32 r = is_even(5001, 0);
    sv_kvx("parity 5001", r);
    h = sv_mix(h, r);
    sv_kvx("checksum", h);
    return 0;
}
