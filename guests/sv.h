/*
 * sv.h: the guest side of Sharpvisor's guest ABI v1 (docs/guest-abi.md), as a
 * header so that every guest program is one translation unit plus start.S.
 *
 * Built with -DSV_LINUX the same calls become i386 Linux system calls
 * (int $0x80), so one C source runs both as a Sharpvisor guest and as a
 * static Linux program; the tests compare the two outputs byte for byte.
 *
 * Printing is unbuffered on purpose: every sv_put* call is one console
 * write, so a guest that faults half way has already shown everything it
 * printed before the fault.
 */
#ifndef SV_H
#define SV_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef int s32;
typedef long long s64;
typedef unsigned int usize;

#define SV_UNUSED __attribute__((unused))

/* Hypercall numbers: below 32 they follow lguest, Sharpvisor's own start at 32. */
#define LHCALL_SHUTDOWN 2
#define LHCALL_HALT 10
#define LHCALL_NOTIFY 17
#define SV_CONSOLE_WRITE 32

#ifndef SV_LINUX
/* int $0x1f: EAX = number, EBX/ECX/EDX/ESI = arguments, result in EAX; the
 * host preserves every other register, so only EAX is an output. "memory"
 * because the host reads guest memory (console write) behind gcc's back. */
static inline SV_UNUSED u32 sv_hypercall(u32 nr, u32 a, u32 b, u32 c, u32 d)
{
    __asm__ volatile("int $0x1f" : "+a"(nr) : "b"(a), "c"(b), "d"(c), "S"(d) : "memory");
    return nr;
}

static inline SV_UNUSED u32 sv_write(const void *buf, usize len)
{
    return sv_hypercall(SV_CONSOLE_WRITE, (u32)buf, len, 0, 0);
}

static inline SV_UNUSED __attribute__((noreturn)) void sv_shutdown(u32 status)
{
    sv_hypercall(LHCALL_SHUTDOWN, status, 0, 0, 0);
    for (;;) /* a shutdown never returns; if a host let it, stop here loudly */
        __asm__ volatile("ud2");
}

/* LHCALL_HALT: sleep until an interrupt is pending or timeout_us passes. */
static inline SV_UNUSED u32 sv_halt(u32 timeout_us)
{
    return sv_hypercall(LHCALL_HALT, timeout_us, 0, 0, 0);
}

/* LHCALL_NOTIFY: 1 if the value reached an eventfd, 0 on a miss. */
static inline SV_UNUSED u32 sv_notify(u32 value)
{
    return sv_hypercall(LHCALL_NOTIFY, value, 0, 0, 0);
}
#else
/* i386 Linux: write(2) is 4, exit_group(2) is 252. */
static inline SV_UNUSED u32 sv_write(const void *buf, usize len)
{
    u32 r = 4;
    __asm__ volatile("int $0x80" : "+a"(r) : "b"(1), "c"(buf), "d"(len) : "memory");
    return r;
}

static inline SV_UNUSED __attribute__((noreturn)) void sv_shutdown(u32 status)
{
    __asm__ volatile("int $0x80" : : "a"(252), "b"(status & 0xff) : "memory");
    for (;;)
        __asm__ volatile("ud2");
}
#endif

/* gcc may call these for struct copies and large initialisers even in
 * freestanding mode, so they must exist; rep movs/stos keeps gcc from
 * recognising the loop and turning it back into a call to itself. */
SV_UNUSED void *memcpy(void *dst, const void *src, usize n)
{
    void *d = dst;
    __asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
    return dst;
}

SV_UNUSED void *memset(void *dst, int c, usize n)
{
    void *d = dst;
    __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return dst;
}

SV_UNUSED void *memmove(void *dst, const void *src, usize n)
{
    if ((usize)dst - (usize)src >= n)
        return memcpy(dst, src, n);
    /* Overlapping with dst above src: copy backwards, DF=1, then restore
     * DF=0, which the i386 ABI requires at every call and return. */
    u8 *d = (u8 *)dst + n - 1;
    const u8 *s = (const u8 *)src + n - 1;
    __asm__ volatile("std\n\trep movsb\n\tcld" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
    return dst;
}

SV_UNUSED int memcmp(const void *a, const void *b, usize n)
{
    const u8 *p = a, *q = b;
    for (usize i = 0; i < n; i++)
        if (p[i] != q[i])
            return p[i] < q[i] ? -1 : 1;
    return 0;
}

static SV_UNUSED usize sv_strlen(const char *s)
{
    usize n = 0;
    while (s[n])
        n++;
    return n;
}

static SV_UNUSED void sv_puts(const char *s) { sv_write(s, sv_strlen(s)); }

static SV_UNUSED void sv_putc(char c) { sv_write(&c, 1); }

/* Decimal and hex without a division helper for 32-bit values; the 64-bit
 * decimal print uses __udivdi3/__umoddi3 from libgcc, which is the point:
 * the guests exercise the helpers a real freestanding program links. */
static SV_UNUSED void sv_putu64(u64 v)
{
    char buf[21];
    int i = sizeof buf;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    sv_write(buf + i, sizeof buf - i);
}

static SV_UNUSED void sv_putu(u32 v)
{
    char buf[10];
    int i = sizeof buf;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    sv_write(buf + i, sizeof buf - i);
}

static SV_UNUSED void sv_puti(s32 v)
{
    if (v < 0) {
        sv_putc('-');
        sv_putu(0u - (u32)v);
    } else {
        sv_putu((u32)v);
    }
}

static SV_UNUSED void sv_puti64(s64 v)
{
    if (v < 0) {
        sv_putc('-');
        sv_putu64(0ull - (u64)v);
    } else {
        sv_putu64((u64)v);
    }
}

/* Fixed width, with a 0x prefix: checksums line up and diff cleanly. */
static SV_UNUSED void sv_puthex(u32 v)
{
    char buf[10];
    buf[0] = '0';
    buf[1] = 'x';
    for (int i = 0; i < 8; i++)
        buf[2 + i] = "0123456789abcdef"[(v >> (28 - 4 * i)) & 15];
    sv_write(buf, sizeof buf);
}

static SV_UNUSED void sv_puthex64(u64 v)
{
    char buf[18];
    buf[0] = '0';
    buf[1] = 'x';
    for (int i = 0; i < 16; i++)
        buf[2 + i] = "0123456789abcdef"[(v >> (60 - 4 * i)) & 15];
    sv_write(buf, sizeof buf);
}

/* "name value\n" lines: the common shape of every guest's output. */
static SV_UNUSED void sv_kv(const char *name, u32 v)
{
    sv_puts(name);
    sv_putc(' ');
    sv_putu(v);
    sv_putc('\n');
}

static SV_UNUSED void sv_kvx(const char *name, u32 v)
{
    sv_puts(name);
    sv_putc(' ');
    sv_puthex(v);
    sv_putc('\n');
}

/* A deterministic generator, so native and guest runs see the same data. */
static SV_UNUSED u32 sv_rand(u32 *state)
{
    u32 x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

/* Running checksum that every guest prints last. */
static SV_UNUSED u32 sv_mix(u32 h, u32 v)
{
    h ^= v;
    h *= 0x01000193u;
    return h ^ (h >> 15);
}

#endif
