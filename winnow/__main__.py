"""`python -m winnow ...`: the `winnow` command where no console script is installed (`ray job submit`)."""

from winnow.cli import main

main()
