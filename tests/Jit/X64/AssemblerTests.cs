using Iced.Intel;
using Sharpvisor.Jit.X64;
using Asm = Sharpvisor.Jit.X64.Assembler;
using Reg = Sharpvisor.Jit.X64.Reg;

namespace Sharpvisor.Tests.Jit.X64;

/// <summary>
/// The x64 tier's encoder against Iced's 64-bit decoder and formatter (an
/// oracle nobody here wrote): every encoding shape the block compiler uses,
/// including the awkward ones (r12/r13 as bases, byte registers that need a
/// REX prefix, 32-bit addressing, SIB with no base).
/// </summary>
public class AssemblerTests
{
    private static string Decode(Action<Asm> emit)
    {
        var a = new Asm();
        emit(a);
        a.ResolveLabels();
        byte[] code = a.Code.ToArray();
        var decoder = Iced.Intel.Decoder.Create(64, code);
        var formatter = new GasFormatter();
        formatter.Options.GasShowMnemonicSizeSuffix = false;
        formatter.Options.SmallHexNumbersInDecimal = false;
        formatter.Options.UppercaseHex = false;
        var output = new StringOutput();
        var lines = new List<string>();
        while (decoder.IP < (ulong)code.Length)
        {
            var insn = decoder.Decode();
            Assert.False(insn.IsInvalid, $"invalid encoding: {Convert.ToHexString(code)}");
            formatter.Format(insn, output);
            lines.Add(output.ToStringAndReset());
        }
        return string.Join("; ", lines);
    }

    public static TheoryData<string, string> Cases => new()
    {
        { "mov r8d,eax", "mov %eax,%r8d" },
        { "mov rbp,rdi", "mov %rdi,%rbp" },
        { "mov byte r15b,sil", "mov %sil,%r15b" },
        { "mov32 r9d,imm", "mov $0x89abcdef,%r9d" },
        { "mov64 rdi,imm", "movabs $0x123456789abc,%rdi" },
        { "load ebx+disp8", "mov 0x10c(%rbx),%eax" },
        { "load r13 base", "mov (%r13),%eax" },
        { "load r12 base", "mov (%r12),%r10d" },
        { "load rsi+rcx", "mov (%rsi,%rcx),%edx" },
        { "store byte r11b", "mov %r11b,(%rsi,%rcx)" },
        { "store word imm", "movw $0xbeef,(%rsi,%rcx)" },
        { "store byte imm", "movb $0x7f,(%rsi,%rcx)" },
        { "movzx from sil", "movzbl %sil,%eax" },
        { "movsx word r9w", "movswl %r9w,%edx" },
        { "movzx byte mem", "movzbl (%rsi,%rcx),%r10d" },
        { "lea32 scaled", "lea 0x111000(%r8d,%r13d,4),%ecx" },
        { "lea32 index only", "lea 0x10(,%r9d,8),%ecx" },
        { "lea64 negative", "lea -0x48(%rax),%rax" },
        { "add r11d,1", "add $0x1,%r11d" },
        { "cmp ecx,imm32", "cmp $0x3fffffc,%ecx" },
        { "sub cl? cmp al,dl", "cmp %dl,%al" },
        { "cmp ax,dx", "cmp %dx,%ax" },
        { "cmp al,[mem]", "cmp 0x110(%rbx),%al" },
        { "and eax,imm", "and $0xffff00ff,%eax" },
        { "cmp byte [rdi+rdx],0", "cmpb $0x0,(%rdi,%rdx)" },
        { "cmp dword [rbp+32],0", "cmpl $0x0,0x20(%rbp)" },
        { "test r14b,r14b", "test %r14b,%r14b" },
        { "shr eax,8", "shr $0x8,%eax" },
        { "sar r12d,cl", "sar %cl,%r12d" },
        { "not eax", "not %eax" },
        { "imul", "imul %r9d,%eax" },
        { "dec mem", "decl 0x20(%rbp)" },
        { "setne r10b", "setne %r10b" },
        { "cmovl", "cmovl %r15d,%r8d" },
        { "jmp r15 / rdx", "jmp *%r15; jmp *%rdx" },
        { "push pop", "push %rbx; push %r12; pop %r15; pop %rbp" },
        { "rol al,3 / ror ax,cl", "rol $0x3,%al; ror %cl,%ax" },
        { "ror r9d,cl", "ror %cl,%r9d" },
        { "shld / shrd", "shld $0x5,%edx,%eax; shrd %cl,%r10d,%eax" },
        { "mul / imul wide", "mul %cl; imul %cx; mul %ecx" },
        { "bswap", "bswap %eax; bswap %r13d" },
        { "bt mem", "btl $0x0,0x20(%rbx)" },
        { "inc dec sized", "inc %al; dec %ax; inc %eax" },
    };

    [Theory, MemberData(nameof(Cases))]
    public void Encoding_DecodesAsIntended(string name, string expected)
    {
        string actual = Decode(a =>
        {
            switch (name)
            {
                case "mov r8d,eax": a.Mov(4, Reg.R8, Reg.Rax); break;
                case "mov rbp,rdi": a.Mov(8, Reg.Rbp, Reg.Rdi); break;
                case "mov byte r15b,sil": a.Mov(1, Reg.R15, Reg.Rsi); break;
                case "mov32 r9d,imm": a.Mov32(Reg.R9, 0x89abcdef); break;
                case "mov64 rdi,imm": a.Mov64(Reg.Rdi, 0x123456789abc); break;
                case "load ebx+disp8": a.Load(4, Reg.Rax, new Mem(Reg.Rbx, 0x10c)); break;
                case "load r13 base": a.Load(4, Reg.Rax, new Mem(Reg.R13)); break;
                case "load r12 base": a.Load(4, Reg.R10, new Mem(Reg.R12)); break;
                case "load rsi+rcx": a.Load(4, Reg.Rdx, new Mem(Reg.Rsi, 0, Reg.Rcx)); break;
                case "store byte r11b": a.Store(1, new Mem(Reg.Rsi, 0, Reg.Rcx), Reg.R11); break;
                case "store word imm": a.StoreImm(2, new Mem(Reg.Rsi, 0, Reg.Rcx), 0xbeef); break;
                case "store byte imm": a.StoreImm(1, new Mem(Reg.Rsi, 0, Reg.Rcx), 0x7f); break;
                case "movzx from sil": a.Extend(Reg.Rax, Reg.Rsi, 1, false); break;
                case "movsx word r9w": a.Extend(Reg.Rdx, Reg.R9, 2, true); break;
                case "movzx byte mem": a.ExtendLoad(Reg.R10, new Mem(Reg.Rsi, 0, Reg.Rcx), 1, false); break;
                case "lea32 scaled": a.Lea(4, Reg.Rcx, new Mem(Reg.R8, 0x111000, Reg.R13, 2, Addr32: true)); break;
                case "lea32 index only": a.Lea(4, Reg.Rcx, new Mem(Reg.None, 0x10, Reg.R9, 3, Addr32: true)); break;
                case "lea64 negative": a.Lea(8, Reg.Rax, new Mem(Reg.Rax, -0x48)); break;
                case "add r11d,1": a.AluRI(Asm.Alu.Add, 4, Reg.R11, 1); break;
                case "cmp ecx,imm32": a.AluRI(Asm.Alu.Cmp, 4, Reg.Rcx, 0x3fffffc); break;
                case "sub cl? cmp al,dl": a.AluRR(Asm.Alu.Cmp, 1, Reg.Rax, Reg.Rdx); break;
                case "cmp ax,dx": a.AluRR(Asm.Alu.Cmp, 2, Reg.Rax, Reg.Rdx); break;
                case "cmp al,[mem]": a.AluRM(Asm.Alu.Cmp, 1, Reg.Rax, new Mem(Reg.Rbx, 0x110)); break;
                case "and eax,imm": a.AluRI(Asm.Alu.And, 4, Reg.Rax, 0xffff00ff); break;
                case "cmp byte [rdi+rdx],0": a.AluMI(Asm.Alu.Cmp, 1, new Mem(Reg.Rdi, 0, Reg.Rdx), 0); break;
                case "cmp dword [rbp+32],0": a.AluMI(Asm.Alu.Cmp, 4, new Mem(Reg.Rbp, 32), 0); break;
                case "test r14b,r14b": a.Test(1, Reg.R14, Reg.R14); break;
                case "shr eax,8": a.ShiftRI(Asm.Shift.Shr, Reg.Rax, 8); break;
                case "sar r12d,cl": a.ShiftRCl(Asm.Shift.Sar, Reg.R12); break;
                case "not eax": a.Not(Reg.Rax); break;
                case "imul": a.Imul(Reg.Rax, Reg.R9); break;
                case "dec mem": a.DecMem(new Mem(Reg.Rbp, 32)); break;
                case "setne r10b": a.SetCc(Cond.NE, Reg.R10); break;
                case "cmovl": a.CMov(Cond.L, Reg.R8, Reg.R15); break;
                case "jmp r15 / rdx": a.JmpReg(Reg.R15); a.JmpReg(Reg.Rdx); break;
                case "push pop": a.Push(Reg.Rbx); a.Push(Reg.R12); a.Pop(Reg.R15); a.Pop(Reg.Rbp); break;
                case "rol al,3 / ror ax,cl": a.ShiftRI(Asm.Shift.Rol, Reg.Rax, 3, 1); a.ShiftRCl(Asm.Shift.Ror, Reg.Rax, 2); break;
                case "ror r9d,cl": a.ShiftRCl(Asm.Shift.Ror, Reg.R9); break;
                case "shld / shrd": a.DoubleShiftRI(true, Reg.Rax, Reg.Rdx, 5); a.DoubleShiftRCl(false, Reg.Rax, Reg.R10); break;
                case "mul / imul wide": a.MulWide(1, false, Reg.Rcx); a.MulWide(2, true, Reg.Rcx); a.MulWide(4, false, Reg.Rcx); break;
                case "bswap": a.Bswap(Reg.Rax); a.Bswap(Reg.R13); break;
                case "bt mem": a.BtMI(new Mem(Reg.Rbx, 32), 0); break;
                case "inc dec sized": a.IncDec(1, true, Reg.Rax); a.IncDec(2, false, Reg.Rax); a.IncDec(4, true, Reg.Rax); break;
                default: throw new ArgumentException(name);
            }
        });
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Jumps_ToLabelsBeforeAndAfter_LandOnThem()
    {
        var a = new Asm();
        var back = a.NewLabel();
        var ahead = a.NewLabel();
        a.Bind(back);
        a.Not(Reg.Rax);                  // 0: 2 bytes
        a.Jcc(Cond.NE, ahead);           // 2: 6 bytes
        a.Jmp(back);                     // 8: 5 bytes
        a.Bind(ahead);                   // 13
        a.Ret();
        a.ResolveLabels();
        var decoder = Iced.Intel.Decoder.Create(64, a.Code.ToArray());
        decoder.Decode();
        Assert.Equal(13ul, decoder.Decode().NearBranchTarget);
        Assert.Equal(0ul, decoder.Decode().NearBranchTarget);
    }

    [Fact]
    public void AnUnboundLabel_IsACompilerBug_NotSilentCode()
    {
        var a = new Asm();
        a.Jmp(a.NewLabel());
        Assert.Throws<InvalidOperationException>(a.ResolveLabels);
    }
}
