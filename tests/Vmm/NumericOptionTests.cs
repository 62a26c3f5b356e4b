using System.CommandLine;
using Sharpvisor.Vmm.Launcher;

namespace Sharpvisor.Tests.Vmm;

/// <summary>
/// Every number on the command line follows one rule (sharpvisor --help):
/// decimal, or hex after 0x or 0X; no sign, no spaces, no leading zero
/// (so 010 is an error rather than 8 or 10), no other base. Each row is one
/// numeric option or VALUE/N field, given 16 in each spelling.
/// </summary>
public class NumericOptionTests
{
    /// <summary>An option or field: the command line that carries <c>{0}</c> as its number, and what the parser made of it.</summary>
    public sealed record Row(string Name, Func<string, string[]> Args, Func<ParseResult, long> Value)
    {
        public override string ToString() => Name;
    }

    private static readonly Row[] Rows =
    [
        new("run --mem (K)", n => ["run", "x.elf", "--mem", n + "K"], p => (long)p.GetValue<ulong>("--mem") >> 10),
        new("run --flat", n => ["run", "x.elf", "--flat", n], p => p.GetValue<uint?>("--flat")!.Value),
        new("run --vcpus", n => ["run", "x.elf", "--vcpus", n], p => p.GetValue<int>("--vcpus")),
        new("run --notify VALUE", n => ["run", "x.elf", "--notify", n + "=fd:3"], p => p.GetValue<NotifySpec[]>("--notify")![0].Value),
        new("run --notify fd:N", n => ["run", "x.elf", "--notify", "1=fd:" + n], p => p.GetValue<NotifySpec[]>("--notify")![0].Target.Fd),
        new("run --irq N", n => ["run", "x.elf", "--irq", n + "=fd:3"], p => p.GetValue<IrqSpec[]>("--irq")![0].Line),
        new("run --irq fd:N", n => ["run", "x.elf", "--irq", "1=fd:" + n], p => p.GetValue<IrqSpec[]>("--irq")![0].Target.Fd),
        new("listen --exit-after", n => ["listen", "--exit-after", n], p => (long)p.GetValue<ulong?>("--exit-after")!.Value),
        new("listen --expect", n => ["listen", "--unix", "/tmp/x", "--expect", n], p => p.GetValue<int>("--expect")),
        new("control --fd", n => ["control", "/tmp/x", "list", "--fd", n], p => p.GetValue<int?>("--fd")!.Value),
        new("smoke NOTIFICATIONS", n => ["smoke", n], p => p.GetValue<int>("NOTIFICATIONS")),
        new("bench notify --iterations", n => ["bench", "notify", "--iterations", n], p => p.GetValue<int>("--iterations")),
        new("bench notify --gap", n => ["bench", "notify", "--gap", n], p => p.GetValue<int>("--gap")),
        new("bench notify-peer --iterations", n => ["bench", "notify-peer", "--iterations", n], p => p.GetValue<int>("--iterations")),
    ];

    private static readonly string[] Sixteen = ["16", "0x10", "0X10", "0x010"];
    private static readonly string[] NotNumbers = [" 16", "16 ", "+16", "-16", "016", "00", "0x", "0x 10", "0x+10", "1_6", "16.0", "1e1", "0o20", "0b10000", "١٦", ""];

    public static TheoryData<Row, string> Accepted()
    {
        var data = new TheoryData<Row, string>();
        foreach (Row row in Rows)
            foreach (string n in Sixteen)
                data.Add(row, n);
        return data;
    }

    public static TheoryData<Row, string> Refused()
    {
        var data = new TheoryData<Row, string>();
        foreach (Row row in Rows)
            foreach (string n in NotNumbers)
                data.Add(row, n);
        return data;
    }

    [Theory]
    [MemberData(nameof(Accepted))]
    public void Number_InDecimalOrHex_IsSixteen(Row row, string number)
    {
        ParseResult parsed = Cli.Parse(row.Args(number));
        Assert.Empty(parsed.Errors.Select(e => e.Message));
        Assert.Equal(16, row.Value(parsed));
    }

    [Theory]
    [MemberData(nameof(Refused))]
    public void Number_InAnyOtherForm_IsAUsageError64_WithOneLine(Row row, string number)
    {
        Assert.NotEmpty(Cli.Parse(row.Args(number)).Errors);
        CliTests.Result r = CliTests.Execute(row.Args(number));
        Assert.Equal(64, r.Status);
        Assert.StartsWith("sharpvisor: ", Assert.Single(r.StderrLines));
    }

    [Theory]
    [InlineData("10", 10.0)]
    [InlineData("0.25", 0.25)]
    [InlineData("1e3", 1000.0)]
    public void Timeout_IsDecimalSeconds(string text, double seconds)
    {
        ParseResult parsed = Cli.Parse(["run", "x.elf", "--timeout", text]);
        Assert.Empty(parsed.Errors.Select(e => e.Message));
        Assert.Equal(seconds, parsed.GetValue<double?>("--timeout"));
    }

    [Theory]
    [InlineData(" 10")]
    [InlineData("10 ")]
    [InlineData("+10")]
    [InlineData("0x10")]
    [InlineData("NaN")]
    [InlineData("Infinity")]
    [InlineData("10s")]
    public void Timeout_InAnyOtherForm_IsAUsageError64(string text) =>
        Assert.Equal(64, CliTests.Execute("run", "x.elf", "--timeout", text).Status);

    [Fact]
    public void Help_StatesTheRule()
    {
        string help = CliTests.Execute("--help").Stdout;
        Assert.Contains(Numbers.Rule, help);
    }
}
