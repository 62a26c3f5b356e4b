/* Sorting through function pointers: a quicksort of our own over untyped
 * elements, driven by comparators called indirectly, so the translator sees
 * indirect calls and returns to many sites. */
#include "sv.h"

typedef int (*cmp_fn)(const void *, const void *);

static void swap_bytes(u8 *a, u8 *b, usize size)
{
    while (size--) {
        u8 t = *a;
        *a++ = *b;
        *b++ = t;
    }
}

static void insertion_sort(u8 *base, usize n, usize size, cmp_fn cmp)
{
    for (usize i = 1; i < n; i++)
        for (usize j = i; j > 0 && cmp(base + (j - 1) * size, base + j * size) > 0; j--)
            swap_bytes(base + (j - 1) * size, base + j * size, size);
}

/* Median-of-three quicksort; recurse into the smaller side, loop on the
 * larger, so the stack stays O(log n) even on adversarial input. */
static void my_qsort(void *vbase, usize n, usize size, cmp_fn cmp)
{
    u8 *base = vbase;
    while (n > 12) {
        u8 *lo = base, *mid = base + (n / 2) * size, *hi = base + (n - 1) * size;
        if (cmp(mid, lo) < 0) swap_bytes(mid, lo, size);
        if (cmp(hi, mid) < 0) {
            swap_bytes(hi, mid, size);
            if (cmp(mid, lo) < 0) swap_bytes(mid, lo, size);
        }
        /* Park the pivot at the front so the partition can move freely. */
        swap_bytes(base, mid, size);
        usize i = 1, j = n - 1;
        for (;;) {
            while (i <= j && cmp(base + i * size, base) < 0) i++;
            while (j >= i && cmp(base + j * size, base) > 0) j--;
            if (i >= j) break;
            swap_bytes(base + i * size, base + j * size, size);
            i++;
            j--;
        }
        swap_bytes(base, base + j * size, size);
        usize left = j, right = n - j - 1;
        if (left < right) {
            my_qsort(base, left, size, cmp);
            base += (j + 1) * size;
            n = right;
        } else {
            my_qsort(base + (j + 1) * size, right, size, cmp);
            n = left;
        }
    }
    insertion_sort(base, n, size, cmp);
}

static int cmp_int_asc(const void *a, const void *b)
{
    s32 x = *(const s32 *)a, y = *(const s32 *)b;
    return (x > y) - (x < y);
}

static int cmp_int_desc(const void *a, const void *b) { return cmp_int_asc(b, a); }

static int cmp_u16(const void *a, const void *b)
{
    return (int)*(const u16 *)a - (int)*(const u16 *)b;
}

struct person {
    u32 age;
    char name[8];
};

static int cmp_str(const char *a, const char *b)
{
    while (*a && *a == *b) a++, b++;
    return (u8)*a - (u8)*b;
}

/* Age first, then name: a two-key order through a 12-byte element. */
static int cmp_person(const void *a, const void *b)
{
    const struct person *p = a, *q = b;
    if (p->age != q->age) return p->age < q->age ? -1 : 1;
    return cmp_str(p->name, q->name);
}

static int check_sorted(const void *vbase, usize n, usize size, cmp_fn cmp)
{
    const u8 *base = vbase;
    for (usize i = 1; i < n; i++)
        if (cmp(base + (i - 1) * size, base + i * size) > 0) return 0;
    return 1;
}

#define N 3000
static s32 ints[N];
static u16 shorts[N];
static struct person people[400];

static u32 sum_ints(void)
{
    u32 h = 0;
    for (usize i = 0; i < N; i++) h = sv_mix(h, (u32)ints[i]);
    return h;
}

int main(void)
{
    u32 seed = 12345, total = 0;
    static const cmp_fn int_orders[2] = {cmp_int_asc, cmp_int_desc};
    static const char *const order_names[2] = {"ints ascending", "ints descending"};

    for (int o = 0; o < 2; o++) {
        for (usize i = 0; i < N; i++) ints[i] = (s32)sv_rand(&seed) % 100000;
        my_qsort(ints, N, sizeof ints[0], int_orders[o]);
        u32 h = sum_ints();
        sv_puts(order_names[o]);
        sv_puts(check_sorted(ints, N, sizeof ints[0], int_orders[o]) ? " sorted, first " : " NOT SORTED, first ");
        sv_puti(ints[0]);
        sv_puts(" last ");
        sv_puti(ints[N - 1]);
        sv_puts(" hash ");
        sv_puthex(h);
        sv_putc('\n');
        total = sv_mix(total, h);
    }

    /* Already sorted and all-equal inputs: the cases a naive pivot breaks on. */
    my_qsort(ints, N, sizeof ints[0], cmp_int_asc);
    my_qsort(ints, N, sizeof ints[0], cmp_int_asc);
    sv_kv("resorted ok", (u32)check_sorted(ints, N, sizeof ints[0], cmp_int_asc));
    for (usize i = 0; i < N; i++) shorts[i] = 7;
    my_qsort(shorts, N, sizeof shorts[0], cmp_u16);
    for (usize i = 0; i < N; i++) shorts[i] = (u16)sv_rand(&seed);
    my_qsort(shorts, N, sizeof shorts[0], cmp_u16);
    sv_kv("shorts ok", (u32)check_sorted(shorts, N, sizeof shorts[0], cmp_u16));
    sv_kv("shorts min", shorts[0]);
    sv_kv("shorts max", shorts[N - 1]);
    total = sv_mix(total, shorts[N / 2]);

    for (usize i = 0; i < 400; i++) {
        people[i].age = sv_rand(&seed) % 90;
        for (int k = 0; k < 7; k++) people[i].name[k] = (char)('a' + sv_rand(&seed) % 26);
        people[i].name[7] = 0;
    }
    my_qsort(people, 400, sizeof people[0], cmp_person);
    sv_kv("people ok", (u32)check_sorted(people, 400, sizeof people[0], cmp_person));
    for (usize i = 0; i < 400; i += 100) {
        sv_puts("person ");
        sv_putu(people[i].age);
        sv_putc(' ');
        sv_puts(people[i].name);
        sv_putc('\n');
    }
    for (usize i = 0; i < 400; i++) total = sv_mix(total, people[i].age * 31 + (u8)people[i].name[0]);
    sv_kvx("checksum", total);
    return 0;
}
