using System.Diagnostics.CodeAnalysis;

namespace Sharpvisor.Vmm.Devices;

/// <summary>The virtio devices <c>--device</c> can add.</summary>
public enum DeviceKind
{
    /// <summary>virtio-blk over a file: <c>blk,path=FILE[,readonly=on]</c>.</summary>
    Block,
    /// <summary>virtio-entropy, from getrandom(2): <c>rng</c>.</summary>
    Entropy,
    /// <summary>virtio-console on stdin and stdout: <c>console</c>.</summary>
    Console,
}

/// <summary>One <c>--device</c> as given: its kind and options.</summary>
/// <param name="Text">The spec as written, for messages.</param>
public sealed record DeviceSpec(DeviceKind Kind, string? Path, bool ReadOnly, string Text)
{
    /// <summary>The kind's name as the option spells it.</summary>
    public string Name => DeviceSpecs.RowOf(Kind).Name;

    /// <summary>Queues the device has (each with its own doorbell and thread).</summary>
    public int Queues => DeviceSpecs.RowOf(Kind).Queues;

    public override string ToString() => $"--device {Text}";
}

/// <summary>
/// Parsing of <c>--device KIND[,KEY=VALUE...]</c>: one row per kind says
/// which keys it takes, which it needs, and how many queues it has. Errors
/// are one line each (a usage error, exit 64).
/// </summary>
public static class DeviceSpecs
{
    /// <summary>A kind: its name, the keys it takes (with their help), those it needs, its queues, and why a VM has at most one (null: any number).</summary>
    public sealed record Row(string Name, DeviceKind Kind, string[] Keys, string[] Required, int Queues, string Help, string? OnlyOne = null);

    public static readonly Row[] Rows =
    [
        new("blk", DeviceKind.Block, ["path", "readonly"], ["path"], 1, "blk,path=FILE[,readonly=on]"),
        new("rng", DeviceKind.Entropy, [], [], 1, "rng"),
        new("console", DeviceKind.Console, [], [], 4, "console", OnlyOne: "stdin has one reader"),
    ];

    /// <summary>A second device of a kind a VM has at most one of, as the error line; null if there is none.</summary>
    public static string? Duplicate(IReadOnlyList<DeviceSpec> specs)
    {
        foreach (Row row in Rows.Where(r => r.OnlyOne != null))
            if (specs.Where(s => s.Kind == row.Kind).Skip(1).FirstOrDefault() is DeviceSpec second)
                return $"{second}: a VM has at most one {row.Name} device ({row.OnlyOne})";
        return null;
    }

    public static Row RowOf(DeviceKind kind) => Rows.First(r => r.Kind == kind);

    /// <summary>The kinds as the help lists them.</summary>
    public static string HelpList => string.Join(", ", Rows.Select(r => r.Help));

    public static bool TryParse(string text, [NotNullWhen(true)] out DeviceSpec? spec, out string error)
    {
        spec = null;
        error = "";
        string[] parts = text.Split(',');
        Row? row = Rows.FirstOrDefault(r => r.Name == parts[0]);
        if (row == null)
        {
            error = $"--device '{text}': unknown kind '{parts[0]}' (kinds: {string.Join(", ", Rows.Select(r => r.Name))})";
            return false;
        }
        var values = new Dictionary<string, string>();
        foreach (string part in parts.Skip(1))
        {
            int eq = part.IndexOf('=');
            string key = eq < 0 ? part : part[..eq];
            if (!row.Keys.Contains(key))
            {
                error = row.Keys.Length == 0
                    ? $"--device '{text}': {row.Name} takes no options"
                    : $"--device '{text}': unknown option '{key}' ({row.Name} takes {string.Join(", ", row.Keys)})";
                return false;
            }
            if (eq < 0 || eq == part.Length - 1)
            {
                error = $"--device '{text}': option '{key}' needs a value ({row.Help})";
                return false;
            }
            if (!values.TryAdd(key, part[(eq + 1)..]))
            {
                error = $"--device '{text}': option '{key}' is given twice";
                return false;
            }
        }
        foreach (string key in row.Required)
            if (!values.ContainsKey(key))
            {
                error = $"--device '{text}': {row.Name} needs {key}= ({row.Help})";
                return false;
            }
        bool readOnly = false;
        if (values.TryGetValue("readonly", out string? ro))
        {
            if (ro is not ("on" or "off"))
            {
                error = $"--device '{text}': readonly is on or off, not '{ro}'";
                return false;
            }
            readOnly = ro == "on";
        }
        spec = new DeviceSpec(row.Kind, values.GetValueOrDefault("path"), readOnly, text);
        return true;
    }
}
