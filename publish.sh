#!/usr/bin/env bash
# Publishes the sharpvisor launcher as one native-AOT file: dist/sharpvisor.
# PublishAot is set here, not in the project: in the project it would turn
# dynamic code off under `dotnet run` too, and the IL engine needs it there.
# (The VMM issue adds the single-file JIT build, dist/sharpvisor-jit.)
set -euo pipefail
cd "$(dirname "$0")"
rm -rf dist
dotnet publish src/Vmm/Sharpvisor.Vmm.csproj -c Release -r linux-x64 -nologo \
  -p:PublishAot=true -p:StripSymbols=true -o dist/aot
mkdir -p dist
mv dist/aot/sharpvisor dist/sharpvisor
rm -rf dist/aot
ls -l dist/sharpvisor
