"""`python -m cj_workers.api` (console script `cj-provider-api`)."""

from cj_workers.api.app import main

if __name__ == "__main__":
    main()
