"""The shared command line of the tools that run a trained model over the photo benchmark's inputs
(``tools/harm_bands.py``, ``tools/gate_weights.py``): the same photos, centre crops, seeds and random
degradation parameters as ``test.py --benchmark photos``."""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional, Sequence, Tuple


def probe_parser(doc: str, degradations: Sequence[str]) -> argparse.ArgumentParser:
    """A parser described by the first line of ``doc``, with ``--ckpt``, ``--root``, ``--degradations``
    (default ``degradations``), ``--seeds`` (0) and ``--crop`` (128)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--ckpt", required=True, help="checkpoint (its config beside it)")
    parser.add_argument("--root", default="data/photos")
    parser.add_argument("--degradations", nargs="+", default=list(degradations))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--crop", type=int, default=128)
    return parser


def parse_probe(parser: argparse.ArgumentParser, argv: Optional[List[str]] = None
                ) -> Optional[Tuple[argparse.Namespace, object, List]]:
    """(arguments, the checkpoint's network in eval mode, the photo samples), or None after one line on
    stderr naming the file when the checkpoint or the corpus cannot be read (the tool then exits with 2)."""
    from .build import load_model
    from .errors import MsOsrError
    from .samples import photo_samples

    args = parser.parse_args(argv)
    try:
        net = load_model(args.ckpt).net
        samples = photo_samples(args.root, args.degradations, args.seeds, crop=args.crop)
    except MsOsrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    net.set_train(False)
    return args, net, samples
