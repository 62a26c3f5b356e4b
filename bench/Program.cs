using BenchmarkDotNet.Running;

// Runs the benchmarks picked on the command line, from the repository root:
//   dotnet run -c Release --project bench -- --filter '*MapLookup*'
//   dotnet run -c Release --project bench -- --filter '*' --job short   (quicker, noisier)
// Each class compares a hot path with a baseline measured in the same run;
// read the Ratio column (SynchronizeBench: the P50 column).
//   dotnet run -c Release --project bench -- guests   (the engines against qemu-i386 on the C kernels)
//   dotnet run -c Release --project bench -- startup   (hello.elf with dist/sharpvisor and dist/sharpvisor-jit against a native spawn)
//   dotnet run -c Release --project bench -- builds --base OTHER/dist   (two published builds interleaved: kernels and bench notify)
if (args.Length > 0 && args[0] == "guests")
    return Sharpvisor.Bench.GuestKernels.Run(args[1..]);
if (args.Length > 0 && args[0] == "startup")
    return Sharpvisor.Bench.Startup.Run(args[1..]);
if (args.Length > 0 && args[0] == "builds")
    return Sharpvisor.Bench.BuildComparison.Run(args[1..]);
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
