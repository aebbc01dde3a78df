#!/usr/bin/env python3
"""Share of a perf profile's samples per padsim function, inlined functions included.

`perf report --sort sym` charges every sample to the outermost function the compiler did not
inline, so im2col, col2im and most of the small kernels show up as anonymous closures
(`Fn::call`, `fold_with`). This resolves each sampled address with `addr2line -i` and
charges it to the innermost `padsim::` function of its inline chain; samples in the `gemm`
crate are grouped as such. A measuring tool only, like pytorch_cycle.py.

    padsim bench --batch 64 --threads 1 --cycles 40 --repeats 1 --encoder-batch 0 &
    sleep 8; perf record -F 999 -p $! -o perf.data -- sleep 10   # steady state only
    python3 benches/perf_by_function.py perf.data target/release/padsim [--top 40]

Needs perf (Debian: linux-perf) and addr2line (binutils); the binary needs debug info
(the release profile keeps it).
"""

import argparse
import collections
import os
import re
import subprocess


def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def load_bias(data, binary):
    """What to add to a sampled address to get the binary's own address for addr2line."""
    mmaps = run("perf", "script", "-i", data, "--show-mmap-events")
    found = re.search(
        r"\[0x([0-9a-f]+)\(0x([0-9a-f]+)\) @ 0x([0-9a-f]+) .*r-xp " + re.escape(binary), mmaps
    )
    if not found:
        raise SystemExit(f"{binary} is not mapped in {data}: profile that binary, same path")
    start, size, file_offset = (int(found.group(i), 16) for i in (1, 2, 3))
    for line in run("readelf", "-lW", binary).splitlines():
        fields = line.split()
        if fields[:1] == ["LOAD"] and "E" in fields[6:8]:
            offset, vaddr = int(fields[1], 16), int(fields[2], 16)
            return start, start + size, vaddr - offset + file_offset - start
    raise SystemExit(f"no executable segment in {binary}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data")
    parser.add_argument("binary")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    args.binary = os.path.realpath(args.binary)  # perf records mappings by absolute path
    samples = collections.Counter(
        int(ip, 16) for ip in run("perf", "script", "-i", args.data, "-F", "ip").split()
    )
    total = sum(samples.values())
    low, high, bias = load_bias(args.data, args.binary)
    ours = {ip: n for ip, n in samples.items() if low <= ip < high}
    addresses = sorted(ours)
    # addr2line prints each address, then (function, file:line) pairs from the innermost
    # inlined function outwards.
    chains = collections.defaultdict(list)
    current = None
    resolved = run(
        "addr2line", "-f", "-i", "-C", "-a", "-e", args.binary, *(hex(ip + bias) for ip in addresses)
    )
    for line in resolved.splitlines():
        if line.startswith("0x"):
            current = int(line, 16) - bias
        elif current is not None:
            chains[current].append(line)
    chains = {ip: lines[0::2] for ip, lines in chains.items()}
    shares = collections.Counter()
    for ip, n in ours.items():
        functions = chains.get(ip, [])  # innermost first
        name = next((f for f in functions if f.startswith("padsim::")), None)
        if name is None:
            if any("gemm" in f for f in functions):
                name = "gemm crate (microkernels, packing)"
            else:
                name = "other: " + (functions[-1] if functions else "?")
        shares[re.sub(r"(::)?\{\{closure\}\}", "", name)[:110]] += n
    shares["[outside the binary: libc, kernel]"] = total - sum(ours.values())
    print(f"{total} samples")
    for name, n in shares.most_common(args.top):
        print(f"{100 * n / total:6.2f}%  {name}")


if __name__ == "__main__":
    main()
