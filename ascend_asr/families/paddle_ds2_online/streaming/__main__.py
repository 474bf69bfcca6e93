import sys

from ....runner import run
from . import main

sys.exit(run(main))
