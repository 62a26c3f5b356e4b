using Sharpvisor.Native;

namespace Sharpvisor.Vmm;

/// <summary>
/// Until the launcher exists (issue 3), <c>sharpvisor smoke</c> drives the native
/// layer end to end: a vCPU-like thread notifies through the RCU eventfd map
/// while the map is updated, and device threads count what reaches their eventfds.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args is ["--version"])
        {
            Console.WriteLine($"sharpvisor {typeof(Program).Assembly.GetName().Version?.ToString(3)}");
            return 0;
        }
        if (args is not ["smoke", ..])
        {
            Console.Error.WriteLine("usage: sharpvisor smoke [NOTIFICATIONS]   (the launcher arrives with the translator)");
            return 64;
        }
        int notifications = 100_000;
        if (args.Length > 1 && (!int.TryParse(args[1], out notifications) || notifications <= 0))
        {
            Console.Error.WriteLine($"sharpvisor: NOTIFICATIONS must be a positive integer, not '{args[1]}'");
            return 64;
        }
        try
        {
            return SmokeRun.Run(notifications, Console.Out);
        }
        catch (ErrnoException e)
        {
            Console.Error.WriteLine($"sharpvisor: {e.Message}");
            return 70;
        }
    }
}
