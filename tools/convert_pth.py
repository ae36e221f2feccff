#!/usr/bin/env python
"""Convert published PyTorch checkpoints to MindSpore (and back).

    python tools/convert_pth.py --model res_hair --src hair3d.ckpt --dst ckpt/res_hair_3task.ckpt
    python tools/convert_pth.py --model ptg_rm --src SID_official.pth --dst ptg_rm.ckpt   # finds refinement11.*
    python tools/convert_pth.py --model clip_vit_b32 --src ViT-B-32.pt --dst clip.ckpt   # OpenAI TorchScript
    python tools/convert_pth.py --model res_hair --src ckpt/res_hair_3task.ckpt --dst hair3d_back.ckpt --reverse
    python tools/convert_pth.py --list

Sources: plain state_dicts, BasicSR {'params'}, Lightning {'state_dict'} and TorchScript archives,
read without running code from the file.  A file that holds the model as part of a larger network
(PTG-RM's official checkpoint: the SNR-aware network with PTG-RM under 'refinement11.') is taken
from its prefix, found automatically or given with --prefix.  --reverse writes the container the
official code of the model family loads (--format: plain, basicsr {'params'}, lightning
{'state_dict': 'net.*'}, dataparallel 'module.*').

On any missing, unexpected or mis-shaped tensor the full list is printed, nothing is
written, and the exit status is 1.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ms_osr  # noqa: E402,F401  (applies the CPU fix before mindspore loads)
from ms_osr.torch_formats import FORMATS  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true",
                        help="print the registered model names with the container --reverse writes, and exit")
    parser.add_argument("--model", help="registered model name (see --list)")
    parser.add_argument("--src", help="source checkpoint (PyTorch, or a MindSpore .ckpt with --reverse)")
    parser.add_argument("--dst", help="output file")
    parser.add_argument("--reverse", action="store_true", help="MindSpore .ckpt -> PyTorch file")
    parser.add_argument("--format", default="official", choices=("official",) + FORMATS,
                        help="--reverse: container to write (default: what the model's official code loads)")
    parser.add_argument("--prefix", default=None,
                        help="names carry this prefix in the PyTorch file (e.g. refinement11.); "
                             "default: found automatically when the file holds a larger network")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="model constructor overrides")
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    return parser


def list_models() -> str:
    from ms_osr.registry import list_models as names
    from ms_osr.torch_formats import official_format

    return "\n".join(f"{n:24s} --reverse writes: {official_format(n)}" for n in names())


def convert(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        print(list_models())
        return 0
    missing = [f"--{k}" for k in ("model", "src", "dst") if not getattr(args, k)]
    if missing:
        parser.error(f"{', '.join(missing)} required (or --list)")
    if args.format != "official" and not args.reverse:
        parser.error("--format chooses what --reverse writes; a PyTorch source is recognised by its content")

    from ms_osr.checkpoint import CheckpointError
    from ms_osr.config import split_override
    from ms_osr.build import convert_ckpt_to_pth, convert_pth_to_ckpt
    from ms_osr.runtime import setup_runtime

    setup_runtime(device="cpu", mode="pynative")
    kwargs = dict(split_override(item) for item in args.set)
    if os.path.abspath(args.src) == os.path.abspath(args.dst):
        raise CheckpointError(f"{args.dst}: refusing to overwrite the source checkpoint")
    if args.reverse:
        report = convert_ckpt_to_pth(args.model, args.src, args.dst, fmt=args.format, prefix=args.prefix or "",
                                     **kwargs)
    else:
        report = convert_pth_to_ckpt(args.model, args.src, args.dst, prefix=args.prefix, **kwargs)
    total = sum(int(a.size) for a in report.arrays.values())
    notes = f" ({'; '.join(report.notes)})" if report.notes else ""
    print(f"wrote {args.dst}: {len(report.arrays)} tensors, {total:,} parameters{notes}")
    return 0


def main(argv=None) -> int:
    from ms_osr.cli import run_cli

    return run_cli(convert, argv)


if __name__ == "__main__":
    sys.exit(main())
