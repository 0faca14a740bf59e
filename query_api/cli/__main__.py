"""`python -m query_api.cli` runs the `agentlog` command line."""

from query_api.cli.main import main

main()
