/* Benchmark: sorting 200 k integers through a comparator function pointer
 * (an indirect call per comparison), several rounds of fresh data. */
#include "../sv.h"

typedef int (*cmp_fn)(const s32 *, const s32 *);

static int cmp_asc(const s32 *a, const s32 *b) { return (*a > *b) - (*a < *b); }

static void sort(s32 *a, usize n, cmp_fn cmp)
{
    while (n > 16) {
        s32 pivot = a[n / 2];
        usize i = 0, j = n - 1;
        for (;;) {
            while (cmp(&a[i], &pivot) < 0) i++;
            while (cmp(&pivot, &a[j]) < 0) j--;
            if (i >= j) break;
            s32 t = a[i]; a[i] = a[j]; a[j] = t;
            i++;
            j--;
        }
        sort(a, j + 1, cmp);
        a += j + 1;
        n -= j + 1;
    }
    for (usize i = 1; i < n; i++) {
        s32 v = a[i];
        usize k = i;
        for (; k > 0 && cmp(&a[k - 1], &v) > 0; k--) a[k] = a[k - 1];
        a[k] = v;
    }
}

#define N 200000
static s32 values[N];

int main(void)
{
    u32 seed = 2024, h = 0;
    for (int round = 0; round < 36; round++) {
        for (usize i = 0; i < N; i++) values[i] = (s32)sv_rand(&seed);
        sort(values, N, cmp_asc);
        for (usize i = 0; i < N; i += 997) h = sv_mix(h, (u32)values[i]);
    }
    sv_kvx("checksum", h);
    return 0;
}
