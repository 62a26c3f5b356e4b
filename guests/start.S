/*
 * The entry point of every guest. The ABI sets ESP to the top of RAM and
 * EAX to the vCPU index; Linux sets ESP to its own stack. Either way main
 * runs on a 16-byte aligned stack (gcc's i386 code assumes it) and its
 * return value becomes the exit status.
 */
    .section .text.start, "ax"
    .globl _start
_start:
    xorl %ebp, %ebp          /* end of the frame chain for debuggers */
    andl $-16, %esp
    call main
    movl %eax, %ebx
#ifdef SV_LINUX
    movl $252, %eax          /* exit_group */
    int $0x80
#else
    movl $2, %eax            /* LHCALL_SHUTDOWN */
    int $0x1f
#endif
    ud2                      /* not reached */

    /* No executable stack: tell the linker so, or it warns and assumes one. */
    .section .note.GNU-stack, "", @progbits
