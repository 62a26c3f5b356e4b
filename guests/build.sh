#!/usr/bin/env bash
# Builds every guest twice into guests/build/: NAME.elf for Sharpvisor (guest
# ABI v1, hypercalls) and NAME.linux, the same source as a static i386 Linux
# program (-DSV_LINUX: int $0x80 syscalls), whose output the tests compare
# with the guest's. Benchmarks land in guests/build/bench/. The guests that
# talk to the host (notify, halt, several vCPUs) have no Linux twin: only
# NAME.elf, and their tests check their output against the host's own counts.
#
# Idempotent and fast: a target is rebuilt only when it is older than its
# source, sv.h, start.S, link.ld or this script. Malformed images for the
# loader tests are made by the tests themselves (tests/Vmm/TestElf.cs), so
# they need no compiler.
set -euo pipefail
cd "$(dirname "$0")"

CC=${CC:-gcc}
# -mgeneral-regs-only: ABI v1 has no x87/SSE state, so no floating point or
# vector code may appear. -fno-pic: fixed addresses, no GOT. No stack
# protector or unwind tables: nothing in a freestanding guest provides them.
CFLAGS=(-m32 -O2 -ffreestanding -nostdlib -static -mgeneral-regs-only -fno-pic
        -fno-stack-protector -fno-asynchronous-unwind-tables -fcf-protection=none
        -Wall -Wextra -Werror -Wl,--build-id=none)
# Per-program extras; strings.c wants gcc's inline rep-string expansions.
declare -A EXTRA=([strings]=-minline-all-stringops)

programs=(hello sort int64 switch strings recursion hash)
# Guest only; smp4 is smp.c built for four vCPUs.
guest_only=(notify pingpong notifybench smp smp4)
declare -A SOURCE=([smp4]=smp)
EXTRA[smp4]=-DSMP_VCPUS=4
# The virtio guests (virtio.h's driver; their tests need the host's --device
# and check the exit status and output): vblk, vrng and vecho as they are
# (interrupts, EVENT_IDX and indirect descriptors when the device offers
# them), -poll spinning on the used rings instead of taking interrupts,
# -plain without EVENT_IDX and indirect descriptors (and vblk-plain with
# four-entry queues, so that every request fills the ring and its index
# wraps), vrng-smp with two vCPUs, each driving its own device; vblkbench is
# bench virtio's guest (src/Vmm/Bench).
guest_only+=(vblk vblk-poll vblk-plain vcode vblkbench vrng vrng-poll vrng-smp vecho vecho-poll vecho-plain)
SOURCE+=([vblk-poll]=vblk [vblk-plain]=vblk [vrng-poll]=vrng [vrng-smp]=vrng [vecho-poll]=vecho [vecho-plain]=vecho)
EXTRA+=([vblk-poll]=-DVIRTIO_POLL [vrng-poll]=-DVIRTIO_POLL [vecho-poll]=-DVIRTIO_POLL [vrng-smp]=-DSMP_VCPUS=2
        [vblk-plain]="-DVIRTIO_NO_EVENT_IDX -DVIRTIO_NO_INDIRECT -DVIRTIO_QUEUE_SIZE=4"
        [vecho-plain]="-DVIRTIO_NO_EVENT_IDX -DVIRTIO_NO_INDIRECT")
# Benchmarks built two ways from one source: the same program with its data
# in the page where the code ends or a page further on, and with rotates or
# with shifts in their place.
benches=(sieve crc32 sort interp crc-near crc-far rotate-ror rotate-shift)
declare -A BENCH_SOURCE=([crc-near]=crcpage [crc-far]=crcpage [rotate-ror]=rotate [rotate-shift]=rotate)
declare -A BENCH_EXTRA=([rotate-shift]=-DSHIFTS_ONLY)
declare -A LDSCRIPT=([crc-near]=link-near.ld)
# What link-near.ld does on purpose (code and data in one page) ld warns about.
declare -A LDEXTRA=([link-near.ld]=-Wl,--no-warn-rwx-segments)

if ! echo 'void _start(void) {}' | "$CC" -m32 -ffreestanding -nostdlib -static -x c - -o /dev/null -lgcc 2>/dev/null; then
  echo "guests/build.sh: '$CC -m32' does not work (install gcc-multilib)" >&2
  exit 1
fi

common=(sv.h start.S link.ld link-near.ld build.sh)
common+=(virtio.h virtio-blk.h timing.h) # only the virtio and bench guests include them, but a rebuild is cheap
built=0
# build SOURCE OUTPUT_STEM EXTRA_FLAGS [VARIANTS [LINKER_SCRIPT]]
build() {
  local src=$1 out=$2 extra=$3 variants=${4:-elf linux} script=${5:-link.ld} variant
  for variant in $variants; do
    local target=$out.$variant stale=0 dep
    for dep in "$src" "${common[@]}"; do
      [[ $target -nt $dep ]] || stale=1
    done
    (( stale )) || continue
    local define=()
    [[ $variant == linux ]] && define=(-DSV_LINUX)
    # shellcheck disable=SC2086 # $extra is zero or more flags
    "$CC" "${CFLAGS[@]}" -T "$script" ${LDEXTRA[$script]:-} $extra "${define[@]}" -o "$target.tmp" start.S "$src" -lgcc
    mv "$target.tmp" "$target" # never leave a half-written target that looks new
    built=$((built + 1))
  done
}

mkdir -p build/bench
for p in "${programs[@]}"; do build "$p.c" "build/$p" "${EXTRA[$p]:-}"; done
for g in "${guest_only[@]}"; do build "${SOURCE[$g]:-$g}.c" "build/$g" "${EXTRA[$g]:-}" elf; done
for b in "${benches[@]}"; do
  build "bench/${BENCH_SOURCE[$b]:-$b}.c" "build/bench/$b" "${BENCH_EXTRA[$b]:-}" "elf linux" "${LDSCRIPT[$b]:-link.ld}"
done
echo "guests: $built built, $(( (${#programs[@]} + ${#benches[@]}) * 2 + ${#guest_only[@]} - built )) up to date (guests/build/)"
