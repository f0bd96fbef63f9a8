"""The control plane: mesh API, xDS, config sources, CA, node agent, and the CLI."""
