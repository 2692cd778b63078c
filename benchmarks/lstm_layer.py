"""Benchmark lstm_zoo's LSTM paths vs keras.layers.LSTM (and PyTorch if installed).

    python benchmarks/lstm_layer.py [--batch 64 --steps 100 --input-dim 64 --units 256 ...]

Same options as ``lstm-zoo bench layer`` (this script just runs that command).
"""

import sys

from lstm_zoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "layer", *sys.argv[1:]]))
