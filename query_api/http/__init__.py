"""The HTTP surface: `create_app`, the routers, dependencies, auth and problem details."""
