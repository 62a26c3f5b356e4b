#!/usr/bin/env bash
# Publishes the sharpvisor launcher twice, each as one file that runs alone
# (copied into an empty folder, with no .NET installed and no .so beside it;
# tests/publish-check.sh checks exactly that):
#
#   dist/sharpvisor      native AOT. No JIT, so the x64 and threaded engines
#                        (--engine il is a usage error, 64). Small, starts fast.
#   dist/sharpvisor-jit  self-contained single file with the runtime and its
#                        JIT, so dynamic code works: --engine il, the default
#                        there, gives the IL engine's speed in one file.
#
# PublishAot is set here, not in the project: in the project it would turn
# dynamic code off under `dotnet run` too, and the IL engine needs it there.
set -euo pipefail
cd "$(dirname "$0")"
rm -rf dist
dotnet publish src/Vmm/Sharpvisor.Vmm.csproj -c Release -r linux-x64 -nologo \
  -p:PublishAot=true -p:StripSymbols=true -o dist/aot

# The JIT file. The runtime's native parts are linked into the single-file
# host on Linux; IncludeNativeLibrariesForSelfExtract bundles any other .so
# rather than leaving it beside the file (with this project there is none, so
# nothing is extracted at start either). DebugType=none: no .pdb beside it.
#
# ReadyToRun: yes. Measured with `bench -- startup --also LABEL=FILE`
# (hello.elf, medians of 11 interleaved runs, docs/benchmarks.md "Start-up"): without
# it, start-up JIT-compiles Iced, System.CommandLine and our own code before
# the first guest instruction, and hello took 202 ms; precompiled, 74 ms. It
# costs 14 MB (89.5 MB against 75.9 MB). Hot code is still rejitted by
# tiered compilation, and the IL engine's regions are DynamicMethods, always
# JIT-compiled, so R2R costs the IL engine nothing.
# EnableCompressionInSingleFile: no. It halves the file (39.9 MB, or 43.7 MB
# with R2R) but inflates the assemblies at every start: 268-281 ms.
dotnet publish src/Vmm/Sharpvisor.Vmm.csproj -c Release -r linux-x64 -nologo \
  --self-contained -p:PublishSingleFile=true -p:IncludeNativeLibrariesForSelfExtract=true \
  -p:PublishReadyToRun=true -p:DebugType=none -o dist/jit

mv dist/aot/sharpvisor dist/sharpvisor
mv dist/jit/sharpvisor dist/sharpvisor-jit
rm -rf dist/aot dist/jit
ls -l dist/sharpvisor dist/sharpvisor-jit
