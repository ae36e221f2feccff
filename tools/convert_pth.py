#!/usr/bin/env python
"""Convert published PyTorch checkpoints to MindSpore (and back).

    python tools/convert_pth.py --model res_hair --src hair3d.ckpt --dst ckpt/res_hair_3task.ckpt
    python tools/convert_pth.py --model res_hair --src ckpt/res_hair_3task.ckpt --dst hair3d_back.pth --reverse

On any missing, unexpected or mis-shaped tensor the full list is printed, nothing is
written, and the exit status is 1.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ms_osr  # noqa: E402,F401  (applies the CPU fix before mindspore loads)
from ms_osr.config import parse_value  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="registered model name (see --list)")
    parser.add_argument("--src", required=True, help="source checkpoint (.pth/.ckpt from PyTorch, or .ckpt with --reverse)")
    parser.add_argument("--dst", required=True, help="output file")
    parser.add_argument("--reverse", action="store_true", help="MindSpore .ckpt -> PyTorch state_dict")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="model constructor overrides")
    args = parser.parse_args(argv)

    from ms_osr.checkpoint import CheckpointError
    from ms_osr.convert import convert_ckpt_to_pth, convert_pth_to_ckpt
    from ms_osr.runtime import setup_runtime

    setup_runtime(device="cpu", mode="pynative")
    kwargs = {}
    for item in args.set:
        key, _, value = item.partition("=")
        kwargs[key] = parse_value(value)
    try:
        if os.path.abspath(args.src) == os.path.abspath(args.dst):
            raise CheckpointError(f"{args.dst}: refusing to overwrite the source checkpoint")
        fn = convert_ckpt_to_pth if args.reverse else convert_pth_to_ckpt
        arrays = fn(args.model, args.src, args.dst, **kwargs)
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 1
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    total = sum(int(a.size) for a in arrays.values())
    print(f"wrote {args.dst}: {len(arrays)} tensors, {total:,} parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
