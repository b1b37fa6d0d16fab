"""`python -m cj_workers.worker` (console script `cj-worker`)."""

from cj_workers.worker.service import main

if __name__ == "__main__":
    main()
