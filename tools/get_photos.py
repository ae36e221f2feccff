#!/usr/bin/env python
"""Build the photo corpus (data/photos/) from Debian's wallpaper packages and scikit-image.

    python tools/get_photos.py                  # apt-get download + dpkg-deb -x; no root needed
    python tools/get_photos.py --debs DIR       # use .deb files downloaded elsewhere
    python tools/get_photos.py --list           # the manifest: photo, split, source, licence

Idempotent: a second run checks every stored file's sha256 and downloads nothing.
The manifest (ms_osr/data/photos_manifest.csv) is the list of photographs, chosen by eye.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ms_osr.data import corpus  # noqa: E402


def get_photos(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=corpus.DEFAULT_ROOT, help="corpus folder (default: %(default)s)")
    parser.add_argument("--debs", default=None, help="folder with the packages' .deb files (default: apt-get download)")
    parser.add_argument("--manifest", default=corpus.MANIFEST, help="manifest CSV (default: the package's own)")
    parser.add_argument("--list", action="store_true", help="print the manifest and exit")
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    args = parser.parse_args(argv)
    rows = corpus.read_manifest(args.manifest)
    if args.list:
        for r in rows:
            print(f"{r['split']:5s}  {r['name']:16s} {r['source']} {r['version']}  {r['licence']}  ({r['author']})")
        return 0
    t0 = time.perf_counter()
    corpus.build_corpus(args.out, args.manifest, args.debs)
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0

def main(argv=None) -> int:
    from ms_osr.cli import run_cli

    return run_cli(get_photos, argv)


if __name__ == "__main__":
    sys.exit(main())
