"""python -m genmodels: the command line (genmodels.cli). torchrun -m genmodels runs it on several processes."""

from torch.distributed.elastic.multiprocessing.errors import record

from .cli import main

if __name__ == "__main__":
    record(main)()  # under torchrun, a failing rank's error and traceback go into torchrun's summary
