"""python -m genmodels: the command line (genmodels.cli). torchrun -m genmodels runs it on several processes."""

import sys

from torch.distributed.elastic.multiprocessing.errors import record

from .cli import command

if __name__ == "__main__":
    sys.exit(record(command)())  # under torchrun, a failing rank's error and traceback go into torchrun's summary
