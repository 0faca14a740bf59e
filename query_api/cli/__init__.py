"""The `agentlog` command line: `main` and the verbs it registers."""
