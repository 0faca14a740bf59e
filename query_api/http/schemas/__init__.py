"""Response models of the HTTP routes, one module per resource (what each 2xx body is, exactly)."""
