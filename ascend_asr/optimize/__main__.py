import sys

from ..runner import run
from .cli import main

sys.exit(run(main))
