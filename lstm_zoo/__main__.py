"""``python -m lstm_zoo`` runs the same CLI as the ``lstm-zoo`` console script."""

import sys

from lstm_zoo.cli import main

sys.exit(main())
