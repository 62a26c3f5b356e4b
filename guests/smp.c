/* Several vCPUs in one guest (run with --vcpus SMP_VCPUS). Every vCPU runs
 * main on its own stack; it learns its index from cpuid (leaf 1, EBX bits
 * 24-31), notifies its own value (0x100 + index) ROUNDS times, counting the
 * deliveries from EAX, and then checks in. vCPU 0 waits until every other
 * vCPU has checked in, prints each one's counts and shuts the VM down; the
 * others sleep in LHCALL_HALT meanwhile (with no interrupt source that is a
 * wait only the shutdown ends, which is not a deadlock while vCPU 0 runs).
 *
 * Checking in is one store per vCPU to a word only it writes, and vCPU 0
 * reads them: the engines order guest loads and stores like x86 (stores are
 * seen in order), which is all this needs. It does not use lock xadd or
 * cmpxchg to meet: the engines do not make those atomic across vCPUs yet
 * (see tests/Vmm/SmpTests.cs). A guest only: Linux has no LHCALL_NOTIFY. */
#include "sv.h"

#ifndef SMP_VCPUS
#define SMP_VCPUS 2
#endif
#define ROUNDS 20000
#define VALUE_BASE 0x100

static volatile u32 checked_in[SMP_VCPUS];
static volatile u32 delivered[SMP_VCPUS];

static u32 vcpu_index(void)
{
    u32 a = 1, b, c = 0, d;
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    return b >> 24;
}

int main(void)
{
    u32 me = vcpu_index();
    if (me >= SMP_VCPUS)
        for (;;) /* more vCPUs than the guest was built for: stay out of the way */
            sv_halt(0);

    u32 n = 0;
    for (u32 i = 0; i < ROUNDS; i++)
        n += sv_notify(VALUE_BASE + me);
    delivered[me] = n;  /* the count first ... */
    checked_in[me] = 1; /* ... then the flag: vCPU 0 sees them in this order */
    if (me != 0)
        for (;;)
            sv_halt(0);

    for (u32 k = 1; k < SMP_VCPUS; k++)
        while (!checked_in[k])
            __asm__ volatile("pause");
    for (u32 k = 0; k < SMP_VCPUS; k++) {
        sv_puts("vcpu ");
        sv_putu(k);
        sv_puts(" value ");
        sv_puthex(VALUE_BASE + k);
        sv_puts(" delivered ");
        sv_putu(delivered[k]);
        sv_puts(" missed ");
        sv_putu(ROUNDS - delivered[k]);
        sv_putc('\n');
    }
    return 0;
}
