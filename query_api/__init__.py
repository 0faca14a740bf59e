"""The agentlog server: node wiring (`node/`), the HTTP surface (`http/`), the CLI (`cli/`), the faust worker."""
