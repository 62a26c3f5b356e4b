/* Benchmark: a register-machine interpreter whose dispatch is one switch
 * (a jump table), running a loop of a few million bytecodes. */
#include "../sv.h"

enum { LDI, ADD, SUB, MUL, XOR, SHR, AND, JNZ, DEC, MOV, HALT };

struct insn {
    u8 op, dst, a, b;
    s32 imm;
};

static u32 execute(const struct insn *code, u32 *r)
{
    const struct insn *pc = code;
    for (;;) {
        const struct insn *i = pc++;
        switch (i->op) {
        case LDI: r[i->dst] = (u32)i->imm; break;
        case ADD: r[i->dst] = r[i->a] + r[i->b]; break;
        case SUB: r[i->dst] = r[i->a] - r[i->b]; break;
        case MUL: r[i->dst] = r[i->a] * r[i->b]; break;
        case XOR: r[i->dst] = r[i->a] ^ r[i->b]; break;
        case SHR: r[i->dst] = r[i->a] >> (i->imm & 31); break;
        case AND: r[i->dst] = r[i->a] & (u32)i->imm; break;
        case JNZ: if (r[i->a]) pc = code + i->imm; break;
        case DEC: r[i->dst]--; break;
        case MOV: r[i->dst] = r[i->a]; break;
        case HALT: return r[0];
        }
    }
}

int main(void)
{
    /* r0 = hash, r1 = counter, r2 = multiplier, r3/r4 scratch. */
    static const struct insn program[] = {
        {LDI, 0, 0, 0, (s32)0x811c9dc5}, /* 0 */
        {LDI, 1, 0, 0, 15000000},         /* 1 */
        {LDI, 2, 0, 0, 0x01000193},      /* 2 */
        {AND, 3, 1, 0, 0xff},            /* 3: loop */
        {XOR, 0, 0, 3, 0},               /* 4 */
        {MUL, 0, 0, 2, 0},               /* 5 */
        {SHR, 4, 0, 0, 13},              /* 6 */
        {XOR, 0, 0, 4, 0},               /* 7 */
        {ADD, 3, 3, 1, 0},               /* 8 */
        {SUB, 0, 0, 3, 0},               /* 9 */
        {DEC, 1, 0, 0, 0},               /* 10 */
        {JNZ, 0, 1, 0, 3},               /* 11 */
        {HALT, 0, 0, 0, 0},              /* 12 */
    };
    u32 regs[8] = {0};
    u32 h = execute(program, regs);
    sv_kvx("checksum", h);
    return 0;
}
