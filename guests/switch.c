/* A small stack-machine interpreter: one dense switch over the opcode, which
 * gcc compiles to a bounds check and an indirect jump through a table in
 * .rodata; the translator must follow a computed jump on every instruction. */
#include "sv.h"

enum op {
    OP_PUSH, OP_DUP, OP_DROP, OP_SWAP, OP_OVER, OP_ADD, OP_SUB, OP_MUL,
    OP_DIVMOD, OP_AND, OP_XOR, OP_SHL, OP_LT, OP_EQ, OP_JMP, OP_JZ,
    OP_LOAD, OP_STORE, OP_PRINT, OP_HALT,
};

#define MAXSTACK 64

/* Returns the top of the stack at OP_HALT; prints at OP_PRINT. */
static u32 run(const s32 *code, u32 *vars, u32 *steps)
{
    u32 stack[MAXSTACK];
    int sp = 0;
    u32 pc = 0, n = 0;
    for (;;) {
        n++;
        s32 op = code[pc++];
        u32 a, b;
        switch (op) {
        case OP_PUSH: stack[sp++] = (u32)code[pc++]; break;
        case OP_DUP: stack[sp] = stack[sp - 1]; sp++; break;
        case OP_DROP: sp--; break;
        case OP_SWAP: a = stack[sp - 1]; stack[sp - 1] = stack[sp - 2]; stack[sp - 2] = a; break;
        case OP_OVER: stack[sp] = stack[sp - 2]; sp++; break;
        case OP_ADD: b = stack[--sp]; stack[sp - 1] += b; break;
        case OP_SUB: b = stack[--sp]; stack[sp - 1] -= b; break;
        case OP_MUL: b = stack[--sp]; stack[sp - 1] *= b; break;
        case OP_DIVMOD:
            b = stack[sp - 1];
            a = stack[sp - 2];
            stack[sp - 2] = a / b;
            stack[sp - 1] = a % b;
            break;
        case OP_AND: b = stack[--sp]; stack[sp - 1] &= b; break;
        case OP_XOR: b = stack[--sp]; stack[sp - 1] ^= b; break;
        case OP_SHL: b = stack[--sp]; stack[sp - 1] <<= (b & 31); break;
        case OP_LT: b = stack[--sp]; stack[sp - 1] = stack[sp - 1] < b; break;
        case OP_EQ: b = stack[--sp]; stack[sp - 1] = stack[sp - 1] == b; break;
        case OP_JMP: pc = (u32)code[pc]; break;
        case OP_JZ: pc = stack[--sp] ? pc + 1 : (u32)code[pc]; break;
        case OP_LOAD: stack[sp++] = vars[code[pc++]]; break;
        case OP_STORE: vars[code[pc++]] = stack[--sp]; break;
        case OP_PRINT: sv_putu(stack[--sp]); sv_putc('\n'); break;
        case OP_HALT: *steps = n; return sp ? stack[sp - 1] : 0;
        default:
            sv_puts("bad opcode\n");
            *steps = n;
            return 0xffffffffu;
        }
    }
}

/* Sum of i*i for i < v0: printed, then left on the stack. The number after
 * each opcode's comment is its address, which the jumps name. */
static const s32 squares[] = {
    OP_PUSH, 0, OP_STORE, 1,               /* 0: acc = 0 */
    OP_PUSH, 0, OP_STORE, 2,               /* 4: i = 0 */
    OP_LOAD, 2, OP_LOAD, 0, OP_LT,         /* 8: i < n ? */
    OP_JZ, 33,                             /* 13 */
    OP_LOAD, 2, OP_DUP, OP_MUL,            /* 15: i * i */
    OP_LOAD, 1, OP_ADD, OP_STORE, 1,       /* 19: acc += it */
    OP_LOAD, 2, OP_PUSH, 1, OP_ADD, OP_STORE, 2, /* 24: i++ */
    OP_JMP, 8,                             /* 31 */
    OP_LOAD, 1, OP_DUP, OP_PRINT, OP_HALT, /* 33 */
};

/* gcd(v0, v1) by repeated divmod, printed; then the Collatz step count of
 * v3, printed; halts with the gcd on the stack. */
static const s32 gcd_collatz[] = {
    OP_LOAD, 1, OP_JZ, 18,                 /* 0: while b != 0 */
    OP_LOAD, 0, OP_LOAD, 1, OP_DIVMOD,     /* 4: a / b, a % b */
    OP_LOAD, 1, OP_STORE, 0,               /* 9: a = b */
    OP_STORE, 1, OP_DROP, OP_JMP, 0,       /* 13: b = a % b */
    OP_LOAD, 0, OP_PRINT,                  /* 18 */
    OP_PUSH, 0, OP_STORE, 2,               /* 21: steps = 0 */
    OP_LOAD, 3, OP_PUSH, 1, OP_EQ, OP_JZ, 34, /* 25: until x == 1 */
    OP_JMP, 70,                            /* 32 */
    OP_LOAD, 3, OP_PUSH, 1, OP_AND, OP_JZ, 53, /* 34: odd? */
    OP_LOAD, 3, OP_PUSH, 3, OP_MUL, OP_PUSH, 1, OP_ADD, OP_STORE, 3, OP_JMP, 61, /* 41: x = 3x + 1 */
    OP_LOAD, 3, OP_PUSH, 2, OP_DIVMOD, OP_DROP, OP_STORE, 3, /* 53: x = x / 2 */
    OP_LOAD, 2, OP_PUSH, 1, OP_ADD, OP_STORE, 2, OP_JMP, 25, /* 61: steps++ */
    OP_LOAD, 2, OP_PRINT, OP_LOAD, 0, OP_HALT, /* 70 */
};

int main(void)
{
    u32 h = 0;
    for (u32 n = 10; n <= 10000; n *= 10) {
        u32 vars[4] = {n, 0, 0, 0}, steps;
        u32 top = run(squares, vars, &steps);
        sv_puts("squares below ");
        sv_putu(n);
        sv_puts(": steps ");
        sv_putu(steps);
        sv_putc('\n');
        h = sv_mix(sv_mix(h, top), steps);
    }

    static const u32 inputs[][4] = {{1071, 462, 0, 27}, {832040, 514229, 0, 97}, {1u << 20, 3u << 12, 0, 871}};
    for (usize t = 0; t < 3; t++) {
        u32 vars[4] = {inputs[t][0], inputs[t][1], 0, inputs[t][3]}, steps;
        u32 top = run(gcd_collatz, vars, &steps);
        sv_kv("steps", steps);
        h = sv_mix(sv_mix(h, top), steps);
    }

    static const s32 bad[] = {OP_PUSH, 1, 99};
    u32 steps;
    h = sv_mix(h, run(bad, 0, &steps));
    sv_kvx("checksum", h);
    return 0;
}
