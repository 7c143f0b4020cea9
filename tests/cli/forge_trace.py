#!/usr/bin/env python3
"""Writes a damaged copy of a trace for the command-line tests (h5py).

Usage: forge_trace.py IN OUT version N | format NAME | delete ATTR
"""
import shutil
import sys

import h5py

src, dst, what = sys.argv[1], sys.argv[2], sys.argv[3]
shutil.copyfile(src, dst)
with h5py.File(dst, "r+") as f:
    if what == "version":
        f.attrs["version"] = int(sys.argv[4])
    elif what == "format":
        f.attrs["format"] = sys.argv[4]
    elif what == "delete":
        del f.attrs[sys.argv[4]]
    else:
        sys.exit("unknown forgery " + what)
