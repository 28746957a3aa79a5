"""The deployer's entrypoints: the gRPC server, the admin servicer, the CLI."""
